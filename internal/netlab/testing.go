package netlab

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
)

// RequireEnv, when set to 1 in the environment, turns the lab's skips into
// failures. CI sets it, so that a lab test can never pass by skipping
// there.
const RequireEnv = "TETHER_LAB_REQUIRED"

// DebugEnv, when set to 1, logs the lab's processes' output in tests.
const DebugEnv = "TETHER_LAB_DEBUG"

// New builds a lab for the profile, named for use in tests. It skips the
// test with the reason when this machine cannot host a lab (not root, tools
// missing), unless RequireEnv is set, and closes the lab when the test and
// its subtests finish, whether they pass, fail or panic.
func New(tb testing.TB, p Profile) *Lab {
	tb.Helper()
	return NewConfig(tb, Config{Profile: p})
}

// NewConfig is New with the rest of the lab's configuration; a nil Logger
// logs to the test.
func NewConfig(tb testing.TB, cfg Config) *Lab {
	tb.Helper()
	SkipUnlessSupported(tb)
	level := slog.LevelInfo
	if os.Getenv(DebugEnv) == "1" {
		level = slog.LevelDebug
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: level}))
	}
	l, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("netlab: building the %s lab: %v", cfg.Profile.Name, err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("netlab: tearing down: %v", err)
		}
	})
	return l
}

// SkipUnlessSupported skips tb when the machine cannot run a lab.
func SkipUnlessSupported(tb testing.TB) {
	tb.Helper()
	if err := Supported(); err != nil {
		if os.Getenv(RequireEnv) == "1" && errors.Is(err, errSkip) {
			tb.Fatalf("%v (and %s=1 requires the lab)", err, RequireEnv)
		}
		tb.Skipf("skipping lab test: %v", err)
	}
}

// testWriter sends log lines to the test log, so they show with -v or on
// failure only.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// HoldCPU makes a CPU-heavy test that needs no lab (a full speed test on
// loopback, say) take the machine-wide lab lock until it ends, so it never
// runs beside another package's lab that measures rates or delays on a
// small machine. It needs no root.
func HoldCPU(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lockWait)
	defer cancel()
	if err := acquireHost(ctx); err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(releaseHost)
}

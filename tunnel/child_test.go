package tunnel

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The lab tests run each engine as a process inside a namespace, the way
// the daemon and the gateway run in life, so that it can be killed like a
// crashed process. The process is this test binary, re-executed with
// childEnv naming a childSpec file.
const childEnv = "TETHER_TUNNEL_CHILD"

// childSpec is what a child process runs.
type childSpec struct {
	Config     string  // wg-quick file
	Policy     *Policy // nil: config mode
	FailClosed bool
	Probe      netip.Addr
	ResolvConf string // empty: leave DNS alone
	StateDir   string
	StatusFile string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "tunnel child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild brings a TUN tunnel up from the spec, writes its Status as JSON
// to StatusFile every 100 ms, and brings it down on SIGTERM or SIGINT.
func runChild(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec childSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	f, err := os.Open(spec.Config)
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(f, filepath.Base(spec.Config))
	f.Close()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := TUNOptions{Options: Options{Config: cfg, Probe: spec.Probe, Logger: log}, FailClosed: spec.FailClosed}
	if spec.Policy != nil {
		for _, p := range cfg.Peers {
			if p.Endpoint != "" {
				ap, err := ResolveEndpoint(context.Background(), p.Endpoint)
				if err != nil {
					return err
				}
				spec.Policy.Endpoints = append(spec.Policy.Endpoints, ap.Addr())
			}
		}
		if opts.Plan, err = Compute(*spec.Policy); err != nil {
			return err
		}
	}
	if spec.ResolvConf != "" {
		opts.DNS = &ResolvConf{Path: spec.ResolvConf, Backup: filepath.Join(spec.StateDir, "resolv.conf.orig")}
	}
	t, err := NewTUN(opts)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := t.Up(context.Background()); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st := t.Status()
		if b, err := json.Marshal(st); err == nil {
			_ = writeFileAtomic(spec.StatusFile, b, 0o644)
		}
		select {
		case <-sigs:
			return t.Down(context.Background())
		case <-tick.C:
		}
	}
}

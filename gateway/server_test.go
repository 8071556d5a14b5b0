package gateway

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The in-package tests look inside the gateway (its guards, limiters and
// shutdown); they cannot use gatewaytest, which imports this package, so
// they start servers with startServer. Tests of what clients see are in
// package gateway_test, on gatewaytest.

// startServer runs a gateway with cfg on ephemeral loopback ports until
// the test ends, and returns it with its base URL. A nil opts.Now is
// frozen at a fixed time, so limits never refill during a test.
func startServer(tb testing.TB, cfg Config, opts Options) (*Server, string) {
	tb.Helper()
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Measure.STAMPListen = "127.0.0.1:0"
	if opts.Now == nil {
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		opts.Now = func() time.Time { return now }
	}
	s, err := New(cfg, opts)
	require.NoError(tb, err)
	stop, err := s.Start(context.Background())
	require.NoError(tb, err, "the gateway did not start")
	tb.Cleanup(func() {
		// Run returns once every service has: one that outlived its
		// socket used to spin a core for the rest of the test binary.
		done := make(chan error, 1)
		go func() { done <- stop() }()
		select {
		case err := <-done:
			require.NoError(tb, err)
		case <-time.After(30 * time.Second):
			tb.Fatal("the gateway did not stop within 30 s of its context ending")
		}
	})
	return s, s.URL()
}

// TestShutdownEndsSpeedTestsAndDrains: a speed test never ends by
// itself, so shutting down must end it, and Run must return cleanly
// (not after the grace period with an error).
func TestShutdownEndsSpeedTestsAndDrains(t *testing.T) {
	cfg := DefaultConfig()
	cfg.API.Listen, cfg.Measure.STAMPListen = "127.0.0.1:0", ""
	s, err := New(cfg, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	resp, err := http.Get(s.URL() + "/large")
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := make([]byte, 1<<20)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err, "the download is running")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a clean shutdown")
	case <-time.After(shutdownGrace):
		t.Fatal("Run waited on an open-ended download for the whole grace period")
	}
	_, err = io.Copy(io.Discard, resp.Body)
	assert.Error(t, err, "the download was cut, not completed: /large is 8 GiB")
}

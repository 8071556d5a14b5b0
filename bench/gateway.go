package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
)

// gatewayReadyTimeout bounds a gateway process's start: it is ready in
// well under a second on loopback, unless it has a large list to load.
const gatewayReadyTimeout = 20 * time.Second

// Gateway is the gateway a scenario runs against, started by the bench:
// in this process (StartEmbedded), or as a tether-gateway process
// (StartProcess) whose memory a scenario can read. Scenarios reach it
// through API.
type Gateway struct {
	// URL is the API's base URL.
	URL string
	// API is a client of the API, with the admin token when the config
	// has one.
	API *gwapi.Client
	// PID is the gateway process's, 0 for an embedded gateway.
	PID int
	// Log is the process's log file, empty for an embedded gateway.
	Log string

	stop func() error
}

// Stop stops the gateway and waits for it: an embedded one returns Run's
// error, a process is signalled, then killed after 10 s.
func (g *Gateway) Stop() error { return g.stop() }

// StartEmbedded starts the gateway cfg describes in this process and
// returns once its API answers. Its API must be plain HTTP, as for a
// loopback benchmark.
func StartEmbedded(ctx context.Context, cfg gateway.Config, opts gateway.Options) (*Gateway, error) {
	s, err := gateway.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	stop, err := s.Start(ctx)
	if err != nil {
		return nil, err
	}
	api, err := gwapi.New(gwapi.Config{BaseURL: s.URL(), Pin: s.Pin()})
	if err != nil {
		_ = stop()
		return nil, err
	}
	return &Gateway{URL: s.URL(), API: api, stop: stop}, nil
}

// StartProcess writes cfg to dir/gateway.yaml and runs `bin serve` with
// it, logging to dir/gateway.log, and returns once the API at
// api.BaseURL is ready. cfg.API.Listen must name a port, since the bench
// reaches the process there; api says how to trust it and the admin
// token, as for any client.
func StartProcess(ctx context.Context, bin, dir string, cfg gateway.Config, api gwapi.Config) (*Gateway, error) {
	path := filepath.Join(dir, "gateway.yaml")
	_ = os.Remove(path) // a run's config, written again by the next
	if err := gateway.WriteConfig(path, cfg); err != nil {
		return nil, fmt.Errorf("bench: gateway config: %w", err)
	}
	client, err := gwapi.New(api)
	if err != nil {
		return nil, err
	}
	g := &Gateway{URL: client.BaseURL(), API: client, Log: filepath.Join(dir, "gateway.log")}
	logf, err := os.Create(g.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", bin, err)
	}
	p := watch(cmd)
	g.PID, g.stop = cmd.Process.Pid, func() error { p.stop(); return nil }
	ctx, cancel := context.WithTimeout(ctx, gatewayReadyTimeout)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := client.Ready(rctx)
		rcancel()
		if err == nil {
			return g, nil
		}
		select {
		case werr := <-p.done:
			p.done <- werr // stop reads it again
			return nil, fmt.Errorf("bench: the gateway exited during start (%v); see %s", werr, g.Log)
		case <-ctx.Done():
			p.stop()
			return nil, fmt.Errorf("bench: the gateway did not become ready within %v: %w (see %s)", gatewayReadyTimeout, errors.Join(err, ctx.Err()), g.Log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

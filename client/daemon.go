package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/version"
)

// Timeouts of the daemon.
const (
	// gatewayCheckTimeout bounds one health check. A gateway that takes
	// longer to answer a tiny request is unusable for interactive work.
	gatewayCheckTimeout = 3 * time.Second
	// shutdownGrace bounds the local API's graceful shutdown.
	shutdownGrace = 3 * time.Second
	// socketMode lets root and the socket's group (the desktop user's,
	// set by packaging) use the API, and nobody else.
	socketMode = 0o660
)

// Options are a Daemon's collaborators. The zero value is usable.
type Options struct {
	// Logger receives the daemon's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient reaches the gateway; nil means a client with
	// gatewayCheckTimeout.
	HTTPClient *http.Client
}

// Daemon is tetherd. Create it with New, then call Run once.
type Daemon struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	hc     *http.Client

	ready chan struct{} // closed once the local API listens

	mu      sync.Mutex
	obs     observations
	gateway localapi.GatewayStatus
	since   time.Time
}

// New validates cfg and returns a daemon ready to Run.
func New(cfg Config, opts Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tetherd: %w", err)
	}
	cfg = cfg.withDefaults()
	d := &Daemon{cfg: cfg, logger: opts.Logger, now: opts.Now, hc: opts.HTTPClient, ready: make(chan struct{})}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.hc == nil {
		tc, err := gwapi.PinnedTLS(cfg.GatewayPin)
		if err != nil {
			return nil, fmt.Errorf("tetherd: %w", err)
		}
		d.hc = &http.Client{Timeout: gatewayCheckTimeout, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	d.gateway.URL = cfg.Gateway
	return d, nil
}

// Ready is closed once the local API accepts requests.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run serves the local API and checks the gateway until ctx is done, then
// shuts down, removes its socket and returns nil. It returns an error if
// the daemon cannot start.
func (d *Daemon) Run(ctx context.Context) error {
	sock, err := listenSocket(d.cfg.Socket)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.since = d.now()
	d.mu.Unlock()
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sock) }()
	close(d.ready)
	d.logger.Info("tetherd running", "socket", d.cfg.Socket, "gateway", d.cfg.Gateway, "version", version.Version)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d.checkLoop(ctx) }()

	var runErr error
	select {
	case err := <-errc:
		runErr = fmt.Errorf("tetherd: local API: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := srv.Shutdown(sctx); err != nil {
			runErr = fmt.Errorf("tetherd: shutdown: %w", err)
		}
		cancel()
		<-errc
	}
	wg.Wait()
	if err := sock.remove(); err != nil {
		d.logger.Warn("socket left behind", "socket", d.cfg.Socket, "err", err)
	}
	d.logger.Info("tetherd stopped")
	return runErr
}

func (d *Daemon) checkLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.CheckInterval)
	defer t.Stop()
	for {
		d.checkGateway(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkGateway asks the gateway for its info and records the answer and
// the round-trip time.
func (d *Daemon) checkGateway(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, gatewayCheckTimeout)
	defer cancel()
	start := time.Now()
	info, err := d.fetchInfo(ctx)
	rtt := time.Since(start)
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return // shutting down: not an observation
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	was := d.obs
	d.obs = observations{checked: true, reachable: err == nil}
	d.gateway.LastCheck = d.now()
	if err != nil {
		d.gateway.Reachable, d.gateway.RTT, d.gateway.Error = false, 0, err.Error()
	} else {
		d.gateway.Reachable, d.gateway.RTT, d.gateway.Error, d.gateway.Name = true, localapi.Duration(rtt), "", info.Name
	}
	if was != d.obs {
		d.logger.Info("state changed", "from", gatewayState(was), "to", gatewayState(d.obs), "gateway", d.cfg.Gateway, "rtt", rtt, "err", err)
	}
}

func (d *Daemon) fetchInfo(ctx context.Context) (gwapi.Info, error) {
	var info gwapi.Info
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.cfg.Gateway+gwapi.PathInfo, nil)
	if err != nil {
		return info, fmt.Errorf("gateway check: %w", err)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return info, fmt.Errorf("gateway %s did not answer: %w", d.cfg.Gateway, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return info, fmt.Errorf("gateway %s: %w", d.cfg.Gateway, err)
	}
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("gateway %s answered %s", d.cfg.Gateway, resp.Status)
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return info, fmt.Errorf("gateway %s: not a Tether gateway (bad %s): %w", d.cfg.Gateway, gwapi.PathInfo, err)
	}
	return info, nil
}

// Status is the daemon's current status.
func (d *Daemon) Status() localapi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return localapi.Status{State: gatewayState(d.obs), Version: version.Version, Since: d.since, Gateway: d.gateway}
}

// Handler is the local API, served through localapi.Handler: every
// answer carries the API's version and every error is a localapi.Error.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+localapi.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		localapi.WriteJSON(w, d.Status())
	})
	return localapi.Handler(mux)
}

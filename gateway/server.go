package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tetherwfh/tether/gateway/resolver"
	"github.com/tetherwfh/tether/internal/version"
	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// Timeouts of the HTTP API.
const (
	// readHeaderTimeout stops a client that opens a connection and sends
	// nothing from holding it (slowloris); net/http applies it to the TLS
	// handshake too.
	readHeaderTimeout = 10 * time.Second
	// defaultIdleTimeout closes a keep-alive connection, HTTP/1.1 or
	// HTTP/2, with no request in flight for this long (api.idle_timeout). Without it, an HTTP/2
	// connection that finished its handshake was kept for ever: 20,000
	// of them exhausted the gateway's file descriptors. Browsers and Go
	// clients keep idle connections 90 s at most, and reconnecting costs
	// one handshake.
	defaultIdleTimeout = 60 * time.Second
	// shutdownGrace is how long Run waits for requests in flight once its
	// context is done.
	shutdownGrace = 5 * time.Second
)

// Options are a Server's collaborators. The zero value is usable.
type Options struct {
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ForwardDial, in the userspace data plane, connects peers' flows on
	// the host; nil means the host's network. Tests and the lab point it
	// at their own "company" servers.
	ForwardDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Server is a running gateway. Create it with New, then call Run once.
type Server struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	measure *measureserver.Server
	dns     *resolver.Resolver
	metrics *prometheus.Registry
	wg      *wgEndpoint
	admin   string
	// metricsToken, with the admin token, may read /metrics.
	metricsToken string
	// apiConns and dnsConns guard the API's and host DNS's listeners.
	apiConns, dnsConns *connGuard
	opts               Options
	tls                *tls.Config // nil: plain HTTP
	pin                string      // the API certificate's pin

	mu        sync.Mutex
	addr      net.Addr      // set once listening
	stampAddr net.Addr      // the STAMP reflector's, when enabled
	dnsAddr   net.Addr      // the resolver's UDP address, when enabled
	ready     chan struct{} // closed once listening
	started   time.Time
}

// New validates cfg and returns a server ready to Run.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s := &Server{cfg: cfg, logger: opts.Logger, now: opts.Now, ready: make(chan struct{})}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	// The API's measurement service: outsiders in the public pool,
	// enrolled devices in the trusted one when their requests carry
	// their device credential (deviceTrusted). The service inside the
	// tunnel is a server of its own (serveInTunnel).
	ms, err := measureserver.New(measureserver.Config{Logger: s.logger, Now: opts.Now, BaseURL: strings.TrimSuffix(cfg.API.PublicURL, "/"),
		Authenticate: s.deviceTrusted,
		Public:       cfg.Measure.publicLimits(), Trusted: cfg.Measure.trustedLimits(), StallTimeout: cfg.Measure.StallTimeout,
		MaxDownBytes: cfg.Measure.MaxBytesPerRequest, MaxUpBytes: cfg.Measure.MaxBytesPerRequest})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.measure = ms
	if s.now == nil {
		s.now = time.Now
	}
	s.opts = opts
	if s.admin, err = readToken("api.admin_token_file", cfg.API.AdminTokenFile); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if s.metricsToken, err = readToken("api.metrics_token_file", cfg.API.MetricsTokenFile); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s.apiConns = newConnGuard(apiConnsPerClient, 0)
	s.dnsConns = newConnGuard(dnsConnsPerClient, 0)
	if cfg.API.TLSCertFile != "" {
		cert, pin, err := loadCert(cfg.API.TLSCertFile, cfg.API.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		s.pin = pin
	}
	s.metrics = prometheus.NewRegistry()
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMeasureMetrics(s.metrics, "api", s.measure.Stats)
	if cfg.DNS != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Inside the tunnel every peer has an address of its own, so the
		// rate limit counts per peer there, not per /24 of the pool.
		var peers []netip.Prefix
		if cfg.WireGuard != nil {
			peers = []netip.Prefix{cfg.WireGuard.Address.Masked()}
		}
		r, err := resolver.New(ctx, *cfg.DNS, resolver.Options{Logger: s.logger, Registerer: s.metrics, Now: opts.Now, PeerPrefixes: peers})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		s.dns = r
		if c := cfg.Diagnostics.Canary; c != "" {
			if ex, err := r.Explain(c); err == nil && !ex.Decision.Blocked {
				s.logger.Warn("diagnostics.canary is not blocked by the company's lists: devices' filter check will say the filter is off", "canary", c, "why", ex.Summary)
			}
		}
	}
	return s, nil
}

// DNS is the filtering resolver, nil when the config has none.
func (s *Server) DNS() *resolver.Resolver { return s.dns }

// Run serves until ctx is done, then shuts down gracefully and returns nil.
// It returns an error if the gateway cannot start or fails while serving.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("gateway: API cannot listen on %s: %w (is another gateway running? change api.listen)", s.cfg.API.Listen, err)
	}
	// The API speaks HTTP/1.1 and h2c, as the measurement service needs.
	ln = s.apiConns.wrap(ln)
	srv := measureserver.NewHTTPServer(s.Handler())
	srv.ReadHeaderTimeout = readHeaderTimeout
	srv.IdleTimeout = s.idleTimeout()
	// Speed tests never end by themselves; shutting down ends them, and
	// everything else (enrollments, admin calls) drains.
	srv.RegisterOnShutdown(s.measure.Stop)
	srv.ErrorLog = slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)
	var stampConn net.PacketConn
	if addr := s.cfg.Measure.STAMPListen; addr != "" {
		stampConn, err = lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gateway: STAMP reflector cannot listen on %s: %w (port 862 needs root or CAP_NET_BIND_SERVICE; change measure.stamp_listen)", addr, err)
		}
		defer stampConn.Close()
		refl := &stamp.Reflector{Logger: s.logger}
		registerSTAMPMetrics(s.metrics, "api", refl)
		go func() {
			if err := refl.Serve(stampConn); err != nil {
				s.logger.Error("STAMP reflector stopped", "err", err)
			}
		}()
		s.mu.Lock()
		s.stampAddr = stampConn.LocalAddr()
		s.mu.Unlock()
	}
	if s.cfg.WireGuard != nil {
		wg, err := startWireGuard(ctx, *s.cfg.WireGuard, s.cfg.TunnelPolicy(), s.opts, s.now)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gateway: WireGuard: %w", err)
		}
		defer wg.close()
		wg.metrics = newWGMetrics(s.metrics, wg)
		wg.diagnostics = s.diagnostics
		s.wg = wg
		stopInTunnel, err := s.serveInTunnel(ctx, wg)
		if err != nil {
			ln.Close()
			return err
		}
		defer stopInTunnel() // before the device closes (deferred above)
		s.logger.Info("WireGuard listening", "port", wg.cfg.ListenPort, "address", wg.cfg.Address, "public_key", wg.key.Public().String())
	}
	dnsDone := make(chan error, 1)
	if s.dns != nil {
		pc, tln, err := resolver.Listen(ctx, s.cfg.DNS.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("gateway: %w (change dns.listen)", err)
		}
		s.mu.Lock()
		s.dnsAddr = pc.LocalAddr()
		s.mu.Unlock()
		tln = s.dnsConns.wrap(tln)
		go func() { dnsDone <- s.dns.Serve(ctx, pc, tln) }()
	} else {
		close(dnsDone)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.started = s.now()
	s.mu.Unlock()
	close(s.ready)
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
		srv.TLSConfig = s.tls
		// The TLS listener hands the measurement service tls.Conns; it
		// tunes the TCP connection underneath (see measureserver).
		ln = tls.NewListener(ln, s.tls)
	}
	s.logger.Info("gateway serving", "name", s.cfg.Name, "api", scheme+"://"+ln.Addr().String(), "tls_pin", s.pin, "stamp", s.cfg.Measure.STAMPListen, "version", version.Version)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	dnsReturned := s.dns == nil
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: API: %w", err)
	case err := <-dnsDone:
		// Also when ctx ended first and this goroutine ran only after
		// the resolver had stopped: its result is taken here, not waited
		// for again below (a gateway that never stopped, in CI).
		dnsReturned = true
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("gateway: %w", err)
		}
		<-ctx.Done()
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err = nil
	if serr := srv.Shutdown(sctx); serr != nil {
		// A client that does not finish within the grace (a peer gone
		// mid-request, a stalled reader) must not keep the gateway from
		// stopping, nor make a clean stop an error: its connection is cut.
		s.logger.Warn("connections that did not finish within the shutdown grace were closed", "grace", shutdownGrace, "err", serr)
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	if !dnsReturned {
		<-dnsDone // Serve returns once ctx is done and its servers have drained
	}
	s.logger.Info("gateway stopped", "name", s.cfg.Name)
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// Start runs the server in the background, as Run would, and returns once
// it is Ready, or with Run's error if it could not start. stop ends the
// run: it cancels it, waits for Run to return and returns Run's error; it
// may be called more than once and returns the same each time. ctx ending
// ends the run too. Like Run, Start may be called once; it is how a
// process embeds a gateway (the bench, the tests).
func (s *Server) Start(ctx context.Context) (stop func() error, err error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		return nil, err
	}
	var (
		once   sync.Once
		runErr error
	)
	return func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}, nil
}

func (s *Server) idleTimeout() time.Duration {
	if s.cfg.API.IdleTimeout > 0 {
		return s.cfg.API.IdleTimeout
	}
	return defaultIdleTimeout
}

// URL is the API's base URL, empty before Ready.
func (s *Server) URL() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	if s.tls != nil {
		return "https://" + a.String()
	}
	return "http://" + a.String()
}

// Pin is the API certificate's pin; empty when the API is plain HTTP.
func (s *Server) Pin() string { return s.pin }

// Ready is closed once the API listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the API's listening address, nil before Ready.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// STAMPAddr is the STAMP reflector's address, nil before Ready or when
// disabled.
func (s *Server) STAMPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stampAddr
}

// DNSAddr is the resolver's UDP address, nil before Ready or when off.
func (s *Server) DNSAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dnsAddr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

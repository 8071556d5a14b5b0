package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"

	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// intranetPage is the demo company page served inside the tunnel.
const intranetPage = `<!doctype html><title>Company intranet</title>
<h1>Company intranet</h1>
<p>You reached this page through the Tether tunnel: it is served by gateway %q on %s, an address that exists only inside the tunnel.</p>
`

// handleIntranet serves the demo intranet page, naming the gateway and
// its tunnel address gw.
func (s *Server) handleIntranet(gw netip.Addr) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, intranetPage, s.cfg.Name, gw)
	}
}

// serveInTunnel runs the gateway's services on its tunnel address inside
// the netstack: DNS (when configured), the measurement service with a
// small intranet page on port 80, and STAMP on 862. stop shuts them down
// and waits until every one has returned, so none outlives the netstack
// it reads from.
func (s *Server) serveInTunnel(ctx context.Context, e *wgEndpoint) (stop func(), err error) {
	gw := e.cfg.Address.Addr()
	ctx, cancel := context.WithCancel(ctx)
	var (
		closers []io.Closer
		wg      sync.WaitGroup
	)
	fail := func(err error) (func(), error) {
		cancel()
		for _, c := range closers {
			c.Close()
		}
		wg.Wait()
		return nil, fmt.Errorf("gateway: serving inside the tunnel: %w", err)
	}
	// Every peer has an address of its own inside the tunnel, so these
	// guards count per peer, and outsiders never share them.
	webConns, dnsConns := newConnGuard(apiConnsPerClient, 0), newConnGuard(dnsConnsPerClient, 0)
	e.services = []*connGuard{webConns, dnsConns}
	if s.dns != nil {
		pc, err := e.dev.listenUDP(netip.AddrPortFrom(gw, 53))
		if err != nil {
			return fail(err)
		}
		tln, err := e.dev.listenTCP(netip.AddrPortFrom(gw, 53))
		if err != nil {
			pc.Close()
			return fail(err)
		}
		closers = append(closers, pc, tln)
		ln := dnsConns.wrap(tln)
		wg.Go(func() {
			if err := s.dns.Serve(ctx, pc, ln); err != nil {
				s.logger.Error("DNS inside the tunnel stopped", "err", err)
			}
		})
	}
	webLn, err := e.dev.listenTCP(netip.AddrPortFrom(gw, 80))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, webLn)
	ln := webConns.wrap(webLn)
	// Inside the tunnel every client is an enrolled peer: one trusted
	// pool, apart from the API's, counted per peer address.
	trusted := s.cfg.Measure.trustedLimits()
	trusted.V6Bits = 128
	ms, err := measureserver.New(measureserver.Config{Logger: s.logger, Now: s.opts.Now, TrustAll: true, Trusted: trusted,
		BaseURL: "http://" + netip.AddrPortFrom(gw, 80).String(), StallTimeout: s.cfg.Measure.StallTimeout,
		MaxDownBytes: s.cfg.Measure.MaxBytesPerRequest, MaxUpBytes: s.cfg.Measure.MaxBytesPerRequest})
	if err != nil {
		return fail(err)
	}
	registerMeasureMetrics(s.metrics, "tunnel", ms.Stats)
	srv := measureserver.NewHTTPServer(s.tunnelRoutes(ms.Handler(), gw))
	srv.ReadHeaderTimeout, srv.IdleTimeout = readHeaderTimeout, s.idleTimeout()
	srv.ErrorLog = slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)
	srv.RegisterOnShutdown(ms.Stop)
	wg.Go(func() { _ = srv.Serve(ln) })
	pc, err := e.dev.listenUDP(netip.AddrPortFrom(gw, 862))
	if err != nil {
		return fail(err)
	}
	refl := &stamp.Reflector{Logger: s.logger}
	registerSTAMPMetrics(s.metrics, "tunnel", refl)
	wg.Go(func() {
		if err := refl.Serve(pc); err != nil {
			s.logger.Error("STAMP inside the tunnel stopped", "err", err)
		}
	})
	return func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			s.logger.Warn("the in-tunnel web server did not drain", "err", err)
			srv.Close()
		}
		pc.Close()
		wg.Wait()
	}, nil
}

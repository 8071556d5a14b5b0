package gateway

import (
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag/measureserver"
)

// Every HTTP route the gateway serves, on its two listeners:
//
//   - API: api.listen, HTTPS with init's certificate. Every connection
//     counts against the API's guard (apiConnsPerClient per client
//     network), with readHeaderTimeout and api.idle_timeout.
//   - tunnel: port 80 on the gateway's tunnel address, inside the data
//     plane. Only enrolled peers reach it, each under a guard of its own
//     (apiConnsPerClient per peer), with the same timeouts.
//
// Each route's comment reads: listener; auth; limits beyond the
// listener's. Bundle intake and the helpdesk will add theirs here.

// Handler is the gateway's HTTP API, as the API listener serves it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	measure := s.measure.Handler()
	for _, p := range measureserver.Paths {
		// API; none, or a device credential as the bearer token for the trusted
		// pool (deviceTrusted); the public pool (measure.public), or the trusted
		// pool's limits, and deviceFailsPerMinute wrong credentials per client network.
		mux.Handle(p, measure)
	}
	// API; none; none.
	mux.HandleFunc("GET "+gwapi.PathHealth, s.handleHealth)
	// API; none; its checks within readyTimeout.
	mux.HandleFunc("GET "+gwapi.PathReady, s.handleReady)
	// API; none; none.
	mux.HandleFunc("GET "+gwapi.PathInfo, s.handleInfo)
	// API; the metrics or the admin token (metrics name peers' traffic, when
	// employees are online, and the company's lists); none.
	mux.Handle("GET /metrics", bearerAuth("metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}).ServeHTTP, s.metricsToken, s.admin))
	// API; loopback callers only; none.
	mux.HandleFunc("GET "+gwapi.PathDNSExplain, loopbackOnly("dns explain", s.handleExplain))
	// API; the enrollment token in the body; body maxEnrollBody, wireguard.enroll_per_minute per client network.
	mux.HandleFunc("POST "+gwapi.PathEnroll, s.withWG(limitBody(maxEnrollBody, (*wgEndpoint).handleEnroll)))
	// API; a device credential as the bearer token; deviceFailsPerMinute
	// (burst deviceFailBurst) wrong credentials per client network.
	mux.HandleFunc("GET "+gwapi.PathDevice, s.withWG((*wgEndpoint).handleDevice))
	// API; admin token; body maxEnrollBody.
	mux.HandleFunc("POST "+gwapi.PathAdminTokens, adminAuth(s.admin, s.withWG(limitBody(maxEnrollBody, (*wgEndpoint).handleCreateToken))))
	// API; admin token; none.
	mux.HandleFunc("GET "+gwapi.PathAdminPeers, adminAuth(s.admin, s.withWG((*wgEndpoint).handlePeers)))
	// API; admin token; none.
	mux.HandleFunc("POST "+gwapi.PathAdminRevoke, adminAuth(s.admin, s.withWG((*wgEndpoint).handleRevoke)))
	return mux
}

// tunnelRoutes is what the tunnel listener on gw serves; measure is the
// in-tunnel measurement service's handler.
func (s *Server) tunnelRoutes(measure http.Handler, gw netip.Addr) *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range measureserver.Paths {
		// tunnel; the tunnel (every caller is an enrolled peer); the trusted pool, counted per peer address.
		mux.Handle(p, measure)
	}
	// tunnel; the tunnel; none (the demo intranet page).
	mux.HandleFunc("GET /{$}", s.handleIntranet(gw))
	return mux
}

// withWG serves h with the WireGuard endpoint, or 404 when the gateway
// runs none. The endpoint starts in Run, after the handler is built and
// before it serves.
func (s *Server) withWG(h func(*wgEndpoint, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.wg == nil {
			writeJSON(w, http.StatusNotFound, gwapi.Error{Message: "this gateway runs no WireGuard endpoint"})
			return
		}
		h(s.wg, w, r)
	}
}

// limitBody caps a request's body at n bytes for h: reading past them
// fails with *http.MaxBytesError, and the connection closes after the
// answer.
func limitBody(n int64, h func(*wgEndpoint, http.ResponseWriter, *http.Request)) func(*wgEndpoint, http.ResponseWriter, *http.Request) {
	return func(e *wgEndpoint, w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h(e, w, r)
	}
}

package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/peers"
	"github.com/tetherwfh/tether/internal/keyrate"
	"github.com/tetherwfh/tether/internal/termsafe"
	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/stamp"
	"github.com/tetherwfh/tether/tunnel"
)

// WireGuardConfig is the gateway's WireGuard endpoint.
type WireGuardConfig struct {
	// Mode is the data plane: userspace (default; any OS, no root) or tun
	// (Linux, root: kernel forwarding and nftables masquerade).
	Mode string `yaml:"mode,omitempty"`
	// Interface names the TUN device in tun mode; default tgw0.
	Interface string `yaml:"interface,omitempty"`
	// ListenPort is the UDP port; default 51820.
	ListenPort uint16 `yaml:"listen_port"`
	// Address is the gateway's tunnel address, and its prefix is the pool
	// clients' addresses come from, e.g. 10.99.0.1/24.
	Address netip.Prefix `yaml:"address"`
	// KeyFile holds the gateway's private key (0600); init writes it.
	KeyFile string `yaml:"key_file"`
	// Endpoint is host:port as clients reach it, sent at enrollment.
	Endpoint string `yaml:"endpoint"`
	// CompanyPrefixes are routed through the tunnel in split mode.
	CompanyPrefixes []netip.Prefix `yaml:"company_prefixes"`
	// AllowedModes is the company policy: full, split or both.
	AllowedModes []string `yaml:"allowed_modes"`
	// Store is the SQLite peer database.
	Store string `yaml:"store"`
	// EnrollPerMinute bounds enrollment attempts per client address (an
	// IPv6 /64 counts as one address).
	EnrollPerMinute int `yaml:"enroll_per_minute"`
	// AddressQuarantine keeps a revoked peer's tunnel address unused this
	// long; zero means peers.DefaultQuarantine, negative none (tests).
	AddressQuarantine time.Duration `yaml:"address_quarantine,omitempty"`
	// ForwardInternet lets full-tunnel peers reach the internet through
	// the gateway; unset means yes when full is an allowed mode.
	ForwardInternet *bool `yaml:"forward_internet,omitempty"`
	// MasqueradeCompany hides peers behind the gateway's address toward
	// the company prefixes too (tun mode), for company networks with no
	// route back to the pool. Userspace mode always does, by its nature.
	MasqueradeCompany bool `yaml:"masquerade_company,omitempty"`
}

// DefaultTUNInterface names the gateway's TUN device.
const DefaultTUNInterface = "tgw0"

func (w *WireGuardConfig) internet() bool {
	if w.ForwardInternet != nil {
		return *w.ForwardInternet
	}
	return len(w.AllowedModes) == 0 || slices.Contains(w.AllowedModes, "full")
}

func (w *WireGuardConfig) validate() error {
	switch w.Mode {
	case "", ModeUserspace, ModeTUN:
	default:
		return fmt.Errorf("wireguard.mode: %q is neither userspace nor tun", w.Mode)
	}
	if len(w.Interface) > 15 || strings.ContainsAny(w.Interface, "/ \t\n\"") {
		return fmt.Errorf("wireguard.interface: %q is not an interface name (at most 15 bytes, no spaces, slashes or quotes)", w.Interface)
	}
	if !w.Address.IsValid() || w.Address.Bits() >= w.Address.Addr().BitLen()-1 {
		return fmt.Errorf("wireguard.address %v: want the gateway's address with the pool's prefix, e.g. 10.99.0.1/24", w.Address)
	}
	if w.KeyFile == "" {
		return errors.New("wireguard.key_file: required (tether-gateway init writes one)")
	}
	if w.Store == "" {
		return errors.New("wireguard.store: required (the peer database's path)")
	}
	if _, _, err := tunnel.SplitEndpoint(w.Endpoint); err != nil {
		return fmt.Errorf("wireguard.endpoint: %w", err)
	}
	for _, m := range w.AllowedModes {
		if m != "full" && m != "split" {
			return fmt.Errorf("wireguard.allowed_modes: %q is neither full nor split", m)
		}
	}
	if w.EnrollPerMinute < 0 {
		return fmt.Errorf("wireguard.enroll_per_minute: %d is negative", w.EnrollPerMinute)
	}
	return nil
}

// Enrollment and token limits.
const (
	maxEnrollBody = 4 << 10
	// maxTokenTTL: an enrollment token is for onboarding a device, and
	// one that outlives a year is a standing password. It also keeps the
	// expiry far from int64 nanoseconds' end (year 2262).
	maxTokenTTL = 366 * 24 * time.Hour
	// maxTokenUses bounds a batch token: a whole office, not unbounded.
	maxTokenUses = 10000
)

// wgEndpoint is the running WireGuard side of the gateway.
type wgEndpoint struct {
	cfg   WireGuardConfig
	key   tunnel.PrivateKey
	store peers.Store
	dev   dataPlane
	now   func() time.Time
	log   *slog.Logger

	enrollLimit *keyrate.Limiter
	metrics     *wgMetrics
	// services are the guards of the gateway's own in-tunnel listeners,
	// whose connections a revocation closes.
	services []*connGuard
}

func startWireGuard(ctx context.Context, cfg WireGuardConfig, opts Options, now func() time.Time) (*wgEndpoint, error) {
	if cfg.ListenPort == 0 {
		cfg.ListenPort = 51820
	}
	if len(cfg.AllowedModes) == 0 {
		cfg.AllowedModes = []string{"full", "split"}
	}
	if cfg.EnrollPerMinute == 0 {
		cfg.EnrollPerMinute = 10
	}
	key, err := tunnel.ReadKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	store, err := peers.OpenSQLite(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	live, err := store.Peers(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	wc := &tunnel.Config{Interface: tunnel.Interface{PrivateKey: key, ListenPort: cfg.ListenPort, Addresses: []netip.Prefix{cfg.Address}}}
	for _, p := range live {
		if !p.Revoked {
			wc.Peers = append(wc.Peers, tunnel.Peer{PublicKey: p.PublicKey, AllowedIPs: []netip.Prefix{netip.PrefixFrom(p.Address, p.Address.BitLen())}})
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var dev dataPlane
	if cfg.Mode == ModeTUN {
		if cfg.Interface == "" {
			cfg.Interface = DefaultTUNInterface
		}
		dev, err = startTUNPlane(ctx, wc, cfg.Interface, policyOf(cfg), cfg.MasqueradeCompany, log)
	} else {
		dev, err = startUserspacePlane(ctx, wc, policyOf(cfg), opts.ForwardDial, log)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	perMin := float64(cfg.EnrollPerMinute)
	return &wgEndpoint{cfg: cfg, key: key, store: store, dev: dev, now: now, log: log,
		enrollLimit: keyrate.New(keyrate.Config{Rate: perMin / 60, Burst: perMin, Now: now})}, nil
}

func (e *wgEndpoint) close() {
	e.dev.close()
	_ = e.store.Close()
}

func (e *wgEndpoint) count(result string) {
	if e.metrics != nil {
		e.metrics.enrollments.WithLabelValues(result).Inc()
	}
}

func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (e *wgEndpoint) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if !e.enrollLimit.Allow(keyrate.Key(clientAddr(r), 0, 0)) {
		e.count("limited")
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, gwapi.Error{Message: "too many enrollment attempts from this address; wait a minute"})
		return
	}
	var req gwapi.EnrollRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEnrollBody))
	if err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusRequestEntityTooLarge, gwapi.Error{Message: fmt.Sprintf("the request body is over %d bytes", maxEnrollBody)})
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "the body is not an enrollment request: " + err.Error()})
		return
	}
	key, err := tunnel.ParsePublicKey(req.PublicKey)
	if err == nil && key == e.key.Public() {
		err = errors.New("public key: this is the gateway's own key")
	}
	if err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "public_key: " + err.Error()})
		return
	}
	if err := gwapi.CheckLabel(req.Label); err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	p, replayed, err := e.store.Enroll(r.Context(), peers.EnrollRequest{Secret: req.Token, Key: key, Label: req.Label,
		Pool: e.cfg.Address.Masked(), Reserved: []netip.Addr{e.cfg.Address.Addr()}, Quarantine: e.cfg.AddressQuarantine, Now: e.now()})
	switch {
	case errors.Is(err, peers.ErrTokenUnknown), errors.Is(err, peers.ErrTokenExpired), errors.Is(err, peers.ErrTokenUsedUp):
		e.count("refused")
		writeJSON(w, http.StatusForbidden, gwapi.Error{Message: err.Error()})
		return
	case errors.Is(err, peers.ErrKeyEnrolled):
		e.count("refused")
		writeJSON(w, http.StatusConflict, gwapi.Error{Message: err.Error()})
		return
	case errors.Is(err, peers.ErrPoolExhausted):
		e.count("failed")
		writeJSON(w, http.StatusServiceUnavailable, gwapi.Error{Message: err.Error()})
		return
	case err != nil:
		e.count("failed")
		e.log.Error("enrollment failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "enrollment failed; see the gateway log"})
		return
	}
	host := netip.PrefixFrom(p.Address, p.Address.BitLen())
	// A replay sets the peer again: the first attempt may have died
	// before the live device had it.
	if err := e.dev.SetPeer(r.Context(), tunnel.Peer{PublicKey: key, AllowedIPs: []netip.Prefix{host}}); err != nil {
		// The store has the peer; the next start loads it. Say so.
		e.log.Error("enrolled, but the live device refused the peer", "peer", p.ID, "err", err)
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "enrolled, but the live device refused the peer: " + err.Error()})
		return
	}
	if replayed {
		e.count("replayed")
	} else {
		e.count("ok")
	}
	en := gwapi.Enrollment{
		PeerID: p.ID, Address: netip.PrefixFrom(p.Address, e.cfg.Address.Bits()).String(),
		GatewayPublicKey: e.key.Public().String(), Endpoint: e.cfg.Endpoint,
		GatewayAddress: e.cfg.Address.Addr().String(), DNS: []string{e.cfg.Address.Addr().String()},
		AllowedModes: e.cfg.AllowedModes, MTU: tunnel.DefaultMTU,
	}
	for _, c := range e.cfg.CompanyPrefixes {
		en.CompanyPrefixes = append(en.CompanyPrefixes, c.String())
	}
	writeJSON(w, http.StatusOK, en)
}

// adminAuth wraps admin handlers: the admin token, as a bearer token.
// With no admin token configured, the admin API is off.
func adminAuth(token string, h http.HandlerFunc) http.HandlerFunc {
	return bearerAuth("admin", h, token)
}

// bearerAuth wraps h: the request must carry one of tokens as a bearer
// token, compared in constant time. Empty tokens never match; with none
// set, what h serves is off (404, saying how to turn it on).
func bearerAuth(what string, h http.HandlerFunc, tokens ...string) http.HandlerFunc {
	var set []string
	for _, t := range tokens {
		if t != "" {
			set = append(set, t)
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if len(set) == 0 {
			writeJSON(w, http.StatusNotFound, gwapi.Error{Message: fmt.Sprintf("the %s endpoints are off: set api.%s_token_file", what, what)})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		match := 0
		for _, t := range set {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
		}
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tether-gateway"`)
			writeJSON(w, http.StatusUnauthorized, gwapi.Error{Message: fmt.Sprintf("a valid %s token is required", what)})
			return
		}
		h(w, r)
	}
}

func (e *wgEndpoint) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req gwapi.TokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEnrollBody)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "the body is not a token request: " + err.Error()})
		return
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil || ttl <= 0 || ttl > maxTokenTTL {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: fmt.Sprintf("ttl %q: want a positive duration of at most %s, such as 24h", termsafe.String(req.TTL), maxTokenTTL)})
		return
	}
	if req.Uses < 1 || req.Uses > maxTokenUses {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: fmt.Sprintf("uses %d: want 1 to %d", req.Uses, maxTokenUses)})
		return
	}
	if err := gwapi.CheckLabel(req.Label); err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	t, secret, err := e.store.CreateToken(r.Context(), req.Label, ttl, req.Uses, e.now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, gwapi.TokenCreated{ID: t.ID, Secret: secret, Expires: t.Expires, Uses: t.UsesLeft})
}

func (e *wgEndpoint) peerInfos(ctx context.Context) ([]gwapi.PeerInfo, error) {
	ps, err := e.store.Peers(ctx)
	if err != nil {
		return nil, err
	}
	stats, _ := e.dev.PeerStats()
	byKey := map[tunnel.PublicKey]tunnel.PeerStats{}
	for _, s := range stats {
		byKey[s.PublicKey] = s
	}
	out := []gwapi.PeerInfo{}
	for _, p := range ps {
		pi := gwapi.PeerInfo{ID: p.ID, PublicKey: p.PublicKey.String(), Address: p.Address.String(), Label: p.Label,
			Created: p.Created, Revoked: p.Revoked, RevokedAt: p.RevokedAt}
		if s, ok := byKey[p.PublicKey]; ok && !p.Revoked {
			pi.LastHandshake, pi.RxBytes, pi.TxBytes = s.LastHandshake, s.RxBytes, s.TxBytes
		}
		out = append(out, pi)
	}
	return out, nil
}

func (e *wgEndpoint) handlePeers(w http.ResponseWriter, r *http.Request) {
	ps, err := e.peerInfos(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// handleRevoke removes the peer from the live device first, then ends
// every session of its address, then records it: access ends before the
// call returns, and nothing the gateway still holds for the address can
// reach whichever peer is given it next.
func (e *wgEndpoint) handleRevoke(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "peer id: not a number"})
		return
	}
	p, err := e.store.Peer(r.Context(), id)
	if errors.Is(err, peers.ErrPeerUnknown) {
		writeJSON(w, http.StatusNotFound, gwapi.Error{Message: err.Error()})
		return
	} else if err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: err.Error()})
		return
	}
	start := time.Now()
	if err := e.dev.RemovePeer(p.PublicKey); err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: err.Error()})
		return
	}
	took := time.Since(start)
	ended := e.endSessions(p.Address)
	if e.metrics != nil {
		e.metrics.revocations.Inc()
	}
	p, err = e.store.Revoke(r.Context(), id, e.now())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "removed from the device, but not recorded: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, gwapi.Revoked{RemovedInMS: float64(took.Microseconds()) / 1000, SessionsEnded: ended,
		Peer: gwapi.PeerInfo{ID: p.ID, PublicKey: p.PublicKey.String(), Address: p.Address.String(), Label: p.Label,
			Created: p.Created, Revoked: p.Revoked, RevokedAt: p.RevokedAt}})
}

// endSessions ends every session of a, once its peer is gone: the data
// plane's state (netstack endpoints and forwarded flows, or conntrack
// entries) and the connections of the gateway's own services.
func (e *wgEndpoint) endSessions(a netip.Addr) int {
	n, err := e.dev.endSessions(a)
	if err != nil {
		e.log.Error("ending a revoked peer's sessions", "address", a, "err", err)
	}
	for _, g := range e.services {
		n += g.closeFrom(a)
	}
	return n
}

// intranetPage is the demo company page served inside the tunnel.
const intranetPage = `<!doctype html><title>Company intranet</title>
<h1>Company intranet</h1>
<p>You reached this page through the Tether tunnel: it is served by gateway %q on %s, an address that exists only inside the tunnel.</p>
`

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
	mux := http.NewServeMux()
	mh := ms.Handler()
	for _, p := range measureserver.Paths {
		mux.Handle(p, mh)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, intranetPage, s.cfg.Name, gw)
	})
	srv := measureserver.NewHTTPServer(mux)
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

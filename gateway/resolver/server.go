package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Config is the resolver's configuration (the dns: section of the
// gateway's config).
type Config struct {
	// Listen is where to serve DNS over UDP and TCP, e.g. "10.99.0.1:53".
	Listen    string           `yaml:"listen"`
	Upstreams []UpstreamConfig `yaml:"upstreams"`
	Strategy  Strategy         `yaml:"strategy"`
	Lists     []ListConfig     `yaml:"lists"`
	// BlockCategories chooses which categories block; empty means every
	// category a list names. Allow lists always apply.
	BlockCategories []string `yaml:"block_categories"`
	// BlockMode is nxdomain (default) or zero_ip.
	BlockMode BlockMode `yaml:"block_mode"`
	// EDE is 15 (Blocked, default) or 17 (Filtered).
	EDE uint16 `yaml:"ede"`
	// Refresh is how often URL lists are downloaded again; default 6h.
	Refresh time.Duration `yaml:"refresh"`
	// ListDir keeps the last good copy of each downloaded list.
	ListDir    string          `yaml:"list_dir"`
	LocalZones []LocalZone     `yaml:"local_zones"`
	Cache      CacheConfig     `yaml:"cache"`
	RateLimit  RateLimitConfig `yaml:"rate_limit"`
	QueryLog   QueryLogConfig  `yaml:"query_log"`
	// Timeout bounds one query end to end; default 4s.
	Timeout time.Duration `yaml:"timeout"`
	// DisableFastPath sends every UDP query through miekg/dns and the
	// chain (see fastpath.go); for comparison and debugging.
	DisableFastPath bool `yaml:"disable_fast_path"`
}

// Options are the resolver's collaborators.
type Options struct {
	Logger *slog.Logger
	// Registerer gets the metrics; nil means none are registered.
	Registerer prometheus.Registerer
	Now        func() time.Time
	HTTPClient *http.Client
	// Dial reaches the upstreams; nil means the host's network. The
	// gateway's userspace mode dials from its netstack.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PeerPrefixes are the tunnel's address pools (the gateway passes
	// wireguard.address). The rate limit keys a client inside one of them
	// by its own address, since WireGuard binds each peer to its
	// addresses; clients elsewhere share a bucket per network
	// (rate_limit.ipv4_prefix, .ipv6_prefix).
	PeerPrefixes []netip.Prefix
}

// Resolver is the filtering resolver. It implements dns.Handler.
type Resolver struct {
	cfg      Config
	log      *slog.Logger
	now      clock
	filter   *filter
	local    *localZones
	cache    *cache
	limiter  *limiter
	upstream *upstreams
	fetch    *fetcher
	// links are the chain's links in order; chain[i] runs links i and
	// after (see buildChain).
	links    []link
	chain    []Handler
	panicLog *rate.Limiter
	// panicsUnlogged counts the panics recovered since the last one
	// logged.
	panicsUnlogged atomic.Int64
	qlog           *queryLog
	m              *metrics

	reloadMu sync.Mutex
	// serving counts the Serve calls running (the gateway serves the
	// host's sockets and the tunnel's at once); the last one to return
	// closes the cache and the query log.
	serving atomic.Int64
}

// New validates cfg, loads the lists and builds the chain. A list that
// fails to load is reported and skipped, never fatal.
func New(ctx context.Context, cfg Config, opts Options) (*Resolver, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 6 * time.Hour
	}
	if cfg.BlockMode == "" {
		cfg.BlockMode = BlockNXDomain
	}
	if cfg.BlockMode != BlockNXDomain && cfg.BlockMode != BlockZeroIP {
		return nil, fmt.Errorf("dns: block_mode %q: want nxdomain or zero_ip", cfg.BlockMode)
	}
	if cfg.EDE == 0 {
		cfg.EDE = dns.ExtendedErrorCodeBlocked
	}
	if cfg.EDE != dns.ExtendedErrorCodeBlocked && cfg.EDE != dns.ExtendedErrorCodeFiltered {
		return nil, fmt.Errorf("dns: ede %d: want 15 (Blocked) or 17 (Filtered)", cfg.EDE)
	}
	names := map[string]bool{}
	hasURL := false
	for _, lc := range cfg.Lists {
		if err := lc.validate(); err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		if names[lc.Name] {
			return nil, fmt.Errorf("dns: two lists named %s", lc.Name)
		}
		names[lc.Name] = true
		hasURL = hasURL || lc.URL != ""
	}
	if hasURL && cfg.ListDir == "" {
		return nil, errors.New("dns: list_dir is required for URL lists (it keeps the last good copy)")
	}
	r := &Resolver{cfg: cfg, log: opts.Logger.With("component", "dns"), now: opts.Now}
	blocked := map[string]bool{}
	for _, c := range cfg.BlockCategories {
		blocked[c] = true
	}
	if len(blocked) == 0 {
		for _, lc := range cfg.Lists {
			blocked[lc.Category] = true
		}
	}
	r.filter = &filter{mode: cfg.BlockMode, blocked: blocked, ede: cfg.EDE}
	var err error
	if r.local, err = newLocalZones(cfg.LocalZones); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	r.cache = newCache(cfg.Cache, r.now)
	if err := r.cfg.RateLimit.defaults(); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	var peers []netip.Prefix
	for _, p := range opts.PeerPrefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("dns: peer prefix %v is not a prefix", p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		peers = append(peers, p.Masked())
	}
	r.limiter = newLimiter(r.cfg.RateLimit, peers, r.now)
	r.panicLog = rate.NewLimiter(rate.Every(panicLogInterval/panicLogBurst), panicLogBurst)
	if r.upstream, err = newUpstreams(cfg.Upstreams, cfg.Strategy, r.now); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	r.upstream.dial = opts.Dial
	r.fetch = &fetcher{dir: cfg.ListDir, client: opts.HTTPClient}
	r.qlog = newQueryLog(cfg.QueryLog, r.now)
	r.m = newMetrics(opts.Registerer)
	r.buildChain()
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload downloads URL lists, compiles every list into a new set and swaps
// it in. The old set serves until the swap; a list that fails keeps its
// last good copy. It returns an error only if nothing could be compiled.
func (r *Resolver) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	start := time.Now()
	specs, fetchErrs := r.fetch.specs(ctx, r.cfg.Lists)
	set, err := Compile(specs)
	if err != nil {
		r.m.reloads.WithLabelValues("failed").Inc()
		return fmt.Errorf("dns: compiling lists: %w", err)
	}
	for i := range set.lists {
		if e, ok := fetchErrs[set.lists[i].Name]; ok && set.lists[i].Err == "" {
			set.lists[i].Err = e.Error()
		}
	}
	r.filter.set.Store(set)
	result := "ok"
	for _, li := range set.Lists() {
		r.m.listRules.WithLabelValues(li.Name, li.Category).Set(float64(li.Stats.Rules))
		if li.Err != "" {
			result = "partial"
			r.log.Warn("list problem", "list", li.Name, "err", li.Err)
		}
		if li.Stats.Malformed > 0 {
			r.log.Warn("list has malformed lines", "list", li.Name, "malformed", li.Stats.Malformed, "first", firstErr(li.Stats))
		}
	}
	r.m.reloads.WithLabelValues(result).Inc()
	block, allow := set.Len()
	r.log.Info("lists loaded", "block_rules", block, "allow_rules", allow, "lists", len(specs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func firstErr(st ParseStats) string {
	if len(st.Errors) == 0 {
		return ""
	}
	return st.Errors[0].Error()
}

// Explanation is why a name is blocked or allowed.
type Explanation struct {
	Name     string   `json:"name"`
	Decision Decision `json:"decision"`
	// Overrides are the rules of the other verdict that match the name
	// but lose to Decision's rule by precedence, highest first.
	Overrides []Decision `json:"overrides,omitempty"`
	// Category blocking off: the rule matched, but its category doesn't
	// block under the current policy.
	CategoryOff bool   `json:"category_off,omitempty"`
	Summary     string `json:"summary"`
}

// Explain says which rule in which list decides name, what it wins over,
// or why the name passes.
func (r *Resolver) Explain(name string) (Explanation, error) {
	norm, err := normalizeName(name)
	if err != nil {
		return Explanation{}, fmt.Errorf("%q: %w", name, err)
	}
	set := r.filter.set.Load()
	ds := set.matches(norm)
	if len(ds) == 0 {
		return Explanation{Name: norm, Summary: "allowed: no rule in any list matches this name or its parent domains"}, nil
	}
	d := ds[0]
	e := Explanation{Name: norm, Decision: d}
	for _, o := range ds[1:] {
		if o.Allowed != d.Allowed {
			e.Overrides = append(e.Overrides, o)
		}
	}
	at := func(d Decision) string { return fmt.Sprintf("%s in list %s (line %d)", d.Rule, d.List, d.Line) }
	switch {
	case d.Allowed:
		why := "exceptions win over block rules that are not $important"
		switch {
		case set.allowList(d.List):
			why = "an allowlist's rules win over every block rule"
		case d.Important:
			why = "an $important exception wins over every block rule"
		}
		if len(e.Overrides) > 0 {
			e.Summary = fmt.Sprintf("allowed: exception %s wins over the block rule %s; %s", at(d), at(e.Overrides[0]), why)
		} else {
			e.Summary = fmt.Sprintf("allowed: rule %s; %s", at(d), why)
		}
	case !r.filter.blocked[d.Category]:
		e.CategoryOff = true
		e.Decision.Blocked = false
		e.Summary = fmt.Sprintf("allowed: rule %s matches, but category %s is not blocked by policy", at(d), d.Category)
	case len(e.Overrides) > 0:
		e.Summary = fmt.Sprintf("blocked (%s): $important rule %s wins over the exception %s; only an $important exception or an allowlist beats it", d.Category, at(d), at(e.Overrides[0]))
	default:
		e.Summary = fmt.Sprintf("blocked (%s): rule %s in list %s, line %d", d.Category, d.Rule, d.List, d.Line)
	}
	return e, nil
}

// Lists reports the loaded lists and their parse statistics.
func (r *Resolver) Lists() []ListInfo { return r.filter.set.Load().Lists() }

// Panics in the chain are recovered and answered SERVFAIL, but their
// error log (with a stack) is written at most panicLogBurst times per
// panicLogInterval, each with the count of those not logged since: a
// packet that triggers a panic must not turn into a flood of stack traces
// (issue 13: 2,400 bytes of queries once wrote 330 KB of log). The
// metric tether_dns_panics_total counts them all.
const (
	panicLogBurst    = 3
	panicLogInterval = time.Minute
)

// ServeDNS is the edge: it runs the chain under a timeout, turns panics
// and errors into SERVFAIL, sizes the answer for the client, and writes it.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, q *dns.Msg) { r.serve(w, q, 0, Decision{}) }

// serve is ServeDNS with the chain run from link from on: the fast path
// has run the links before it in wire form, and dec is its filter's
// decision.
func (r *Resolver) serve(w dns.ResponseWriter, q *dns.Msg, from int, dec Decision) {
	start := time.Now()
	req := &Request{Msg: q, Decision: dec}
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		req.Client = ap.Addr().Unmap()
	}
	req.TCP = w.RemoteAddr().Network() == "tcp"
	if len(q.Question) == 1 {
		req.Name, req.Qtype = strings.ToLower(dns.Fqdn(q.Question[0].Name)), q.Question[0].Qtype
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	defer cancel()
	resp, err := r.safeResolve(ctx, req, r.chain[from])
	if errors.Is(err, errDrop) {
		r.observe(req, start)
		return
	}
	if err != nil || resp == nil {
		if req.Result == "" || req.Result == "forwarded" {
			req.Result = "failed"
		}
		r.log.Debug("query failed", "name", req.Name, "err", err)
		resp = reply(q, dns.RcodeServerFailure)
		if opt := q.IsEdns0(); opt != nil {
			o := resp.SetEdns0(ednsSize, opt.Do()).IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNetworkError, ExtraText: "no upstream answered"})
		}
	}
	resp.Id = q.Id
	resp.Compress = true
	size := dns.MinMsgSize
	if req.TCP {
		size = dns.MaxMsgSize
	} else if opt := q.IsEdns0(); opt != nil {
		size = max(dns.MinMsgSize, min(int(opt.UDPSize()), ednsSize))
	}
	resp.Truncate(size)
	_ = w.WriteMsg(resp)
	r.observe(req, start)
}

func (r *Resolver) safeResolve(ctx context.Context, req *Request, h Handler) (resp *dns.Msg, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.m.panics.Inc()
			if r.panicLog.AllowN(r.now(), 1) {
				r.log.Error("panic in the DNS chain; answered SERVFAIL", "panic", p, "not_logged_since_last", r.panicsUnlogged.Swap(0), "stack", string(debug.Stack()))
			} else {
				r.panicsUnlogged.Add(1)
			}
			resp, err = nil, errors.New("internal error")
		}
	}()
	return h.Resolve(ctx, req)
}

func (r *Resolver) observe(req *Request, start time.Time) {
	d := time.Since(start)
	qt := dns.TypeToString[req.Qtype]
	if qt == "" {
		qt = "other"
	}
	r.m.queries.WithLabelValues(qt, req.Result).Inc()
	r.m.latency.WithLabelValues(req.Result).Observe(d.Seconds())
	r.qlog.add(req, d)
}

// Serve answers on the given UDP socket and TCP listener (either may be
// nil) until ctx ends. The gateway passes sockets from the host or from
// the tunnel's netstack.
func (r *Resolver) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	r.serving.Add(1)
	// Each call owns its servers: with two calls running, one stopping
	// must neither shut the other's down nor find its own already taken.
	var (
		servers []*dns.Server
		closers []io.Closer
	)
	shutdown := func() {
		for _, c := range closers {
			_ = c.Close()
		}
		for _, s := range servers {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = s.ShutdownContext(sctx)
			cancel()
		}
		if r.serving.Add(-1) == 0 {
			r.cache.close()
			r.qlog.close()
		}
	}
	errc := make(chan error, 2)
	n := 0
	var startErr error
	// start waits until the server runs: miekg/dns refuses to shut down a
	// server that has not started yet ("server not started"), and one
	// shut down too early would then start and serve for ever.
	start := func(s *dns.Server) {
		if startErr != nil {
			return
		}
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		n++
		go func() { errc <- s.ActivateAndServe() }()
		select {
		case <-started:
			servers = append(servers, s)
		case err := <-errc:
			n--
			startErr = err
		}
	}
	if pc != nil {
		if fast, ok := r.serveUDP(ctx, pc); ok {
			closers = append(closers, pc)
			n++
			go func() { errc <- fast() }()
		} else {
			start(&dns.Server{PacketConn: pc, Handler: r, UDPSize: ednsSize})
		}
	}
	if ln != nil {
		start(&dns.Server{Listener: ln, Handler: r, IdleTimeout: func() time.Duration { return 10 * time.Second }, MaxTCPQueries: 128})
	}
	if startErr != nil {
		shutdown()
		for range n {
			<-errc
		}
		return fmt.Errorf("dns: %w", startErr)
	}
	if n == 0 {
		shutdown()
		return errors.New("dns: nothing to serve on")
	}
	refresh := time.NewTicker(r.cfg.Refresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			shutdown()
			for range n {
				<-errc
			}
			return nil
		case err := <-errc:
			n--
			shutdown()
			for range n {
				<-errc
			}
			return fmt.Errorf("dns: %w", err)
		case <-refresh.C:
			if err := r.Reload(ctx); err != nil {
				r.log.Warn("list refresh failed; the previous lists keep serving", "err", err)
			}
		}
	}
}

// ListenAndServe listens on cfg.Listen (UDP and TCP) and serves until ctx
// ends.
func (r *Resolver) ListenAndServe(ctx context.Context) error {
	if r.cfg.Listen == "" {
		return errors.New("dns: no listen address")
	}
	pc, ln, err := Listen(ctx, r.cfg.Listen)
	if err != nil {
		return err
	}
	r.log.Info("serving DNS", "listen", pc.LocalAddr().String())
	return r.Serve(ctx, pc, ln)
}

// Listen opens UDP and TCP on addr, the same port for both. With port 0
// the UDP port is picked first and another process may hold the same TCP
// port, so it tries again.
func Listen(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	var lc net.ListenConfig
	_, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: cannot listen on %s: %w (port 53 needs root or CAP_NET_BIND_SERVICE)", addr, err)
		}
		ln, err := lc.Listen(ctx, "tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || attempt >= 20 {
			return nil, nil, fmt.Errorf("dns: cannot listen on TCP %s: %w", pc.LocalAddr(), err)
		}
	}
}

// Healthy reports whether some upstream is answering.
func (r *Resolver) Healthy() bool { return r.upstream.healthy() }

// QueryLog returns the logged queries, newest last; empty when off.
func (r *Resolver) QueryLog() []QueryLogEntry { return r.qlog.entries() }

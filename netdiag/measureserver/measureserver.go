// Package measureserver is the gateway's measurement service, HTTP side:
// the endpoints of the IETF draft "Responsiveness under Working
// Conditions" (draft-ietf-ippm-responsiveness: a config document at
// /.well-known/nq listing a small download, a large download and an upload
// URL, which Apple's networkQuality -C and goresponsiveness read), plus
// Cloudflare-style /down?bytes=N and /up, /generate_204 and /ip.
//
// Serve the handler with HTTP/2 enabled, over TLS or, for plain HTTP, as
// h2c: clients multiplex latency probes on loaded connections, which needs
// HTTP/2. NewHTTPServer returns a server configured that way.
//
// Transfers are served from two pools with their own limits (Limits):
// the public one, for clients that did not authenticate, conservative by
// default, and the trusted one, for enrolled devices. Clients are counted
// by network (keyrate.Key), and a transfer that stops moving ends
// (Config.StallTimeout), so no client holds a slot it does not use.
package measureserver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tetherwfh/tether/internal/keyrate"
)

// Defaults of Config.
const (
	// DefaultMaxDownBytes caps one /down or /large response: 1 GiB is 8 s
	// at 1 Gbit/s, more than any single test needs; clients fetch again.
	DefaultMaxDownBytes = 1 << 30
	// DefaultMaxUpBytes caps one upload for the same reason.
	DefaultMaxUpBytes = 1 << 30
	// DefaultLargeObjectBytes is the large download's size before the
	// per-request cap (MaxDownBytes). The draft asks for an object large
	// enough that a test never finishes it; 8 GiB is what its reference
	// servers advertise.
	DefaultLargeObjectBytes = 8 << 30
	// DefaultStallTimeout ends a transfer that moves no byte for this
	// long, in either direction, so a client that stops reading (or
	// sending) cannot hold its slot. Progress is a write that completes
	// or a read that returns data. A live download's writes complete at
	// least every couple of loaded round trips (the kernel wakes a
	// blocked writer once a third of its send buffer, sized from the
	// congestion window, has drained); 10 s outlasts that on the worst
	// bloated line, TCP's back-off through five losses in a row (0.2 s
	// doubling: 6.2 s) and a Wi-Fi roam, and frees a stalled slot within
	// seconds.
	DefaultStallTimeout = 10 * time.Second
	// DefaultClientBytesPeriod is how long a client's byte budget takes
	// to refill when Limits set a budget but no period.
	DefaultClientBytesPeriod = time.Hour
	// NoLimit, in a Limits field that allows it (MaxMbps, ClientBytes),
	// turns that limit off.
	NoLimit = -1
	// stallRearm: the stall deadline is pushed back once an eighth of
	// StallTimeout has passed since it was last set, not on every write,
	// so a stall ends after 7/8 to 8/8 of StallTimeout.
	stallRearm = 8
	// writeChunk is the write size: the guard paces in it, and a stream
	// as slow as writeChunk per StallTimeout (26 kbit/s at the default)
	// still counts as moving. Writes cycle through the 256 KiB random
	// block, so the body repeats only beyond deflate's 32 KiB window.
	writeChunk = 32 << 10
	// guardChunk is the read size while the bandwidth guard is on: small
	// enough that the guard paces smoothly rather than in 64 KiB bursts
	// that would fill the gateway's own queues.
	guardChunk = 32 << 10
	// readChunk is the read size of an unguarded upload.
	readChunk = 64 << 10
	// readHeaderTimeout stops idle connections that never send a request.
	readHeaderTimeout = 10 * time.Second
	// fillBlock is the size of the random block streamed repeatedly.
	fillBlock = 256 << 10
	// ReceiveBuffer is the socket receive buffer set on every connection.
	// Linux grows receive windows from the RTT it measures, so on a short
	// path with a deep bottleneck queue autotuning lags the queue and an
	// upload never fills it: the line looks less bloated than it is. A
	// fixed 4 MiB buffer (iperf3's -w, in effect) keeps the window out of
	// the way up to 1 Gbit/s at 30 ms per stream.
	ReceiveBuffer = 4 << 20
)

// HeaderUploadProgress, sent as "1" with an upload, asks the server to
// tell, while the upload runs, how much it has received: the answer
// starts at once (the same header, set to "1"), then carries one line per
// progressEvery of receiving, the bytes received so far in decimal, and
// a last line when the body ends. A client that counts its upload on a
// connection the OS knows nothing of (a userspace tunnel's) cannot read
// what the peer acknowledged, and counting what it wrote counts its send
// buffers too. A line that is not a number is the reason the upload was
// cut. Clients that do not ask get the JSON answer, as ever.
const HeaderUploadProgress = "Tether-Upload-Progress"

// progressEvery paces progress lines: a tenth of the client's goodput
// sampling, so its samples are never more than this stale.
const progressEvery = 50 * time.Millisecond

// Paths served.
const (
	PathConfig   = "/.well-known/nq"
	PathSmall    = "/small"
	PathLarge    = "/large"
	PathUpload   = "/upload"
	PathDown     = "/down"
	PathUp       = "/up"
	PathGenerate = "/generate_204"
	PathIP       = "/ip"
)

// Paths lists every path the service serves, for embedding its handler
// in a larger mux.
var Paths = []string{PathConfig, PathSmall, PathLarge, PathUpload, PathDown, PathUp, PathGenerate, PathIP}

// Limits bound one pool of transfers (see Config). A client is its
// address grouped by keyrate.Key: an IPv4 address, an IPv6 /64 (V6Bits),
// since one host can rotate through the addresses of its /64 at will.
// Zero fields mean the pool's default (DefaultPublicLimits,
// DefaultTrustedLimits).
type Limits struct {
	// MaxConcurrentPerClient bounds one client's concurrent transfers.
	MaxConcurrentPerClient int
	// MaxConcurrent bounds the pool's concurrent transfers.
	MaxConcurrent int
	// MaxMbps is the bandwidth guard: each direction's transfers in the
	// pool, together, are paced to at most this many Mbit/s, so speed
	// tests leave the gateway's link to WireGuard and DNS. NoLimit turns
	// it off. The pools' guards add up.
	MaxMbps float64
	// ClientBytes is one client's byte budget, both directions together:
	// a token bucket of this many bytes that refills over
	// ClientBytesPeriod. A transfer the budget cannot pay for is refused
	// (429) or, under way, ends short. NoLimit turns it off.
	ClientBytes       int64
	ClientBytesPeriod time.Duration
	// V6Bits is the prefix length that groups IPv6 clients; zero means
	// keyrate.DefaultV6Bits (64). Inside a tunnel whose peers share a
	// /64, 128 keys each peer apart.
	V6Bits int
}

// DefaultPublicLimits serve clients that did not authenticate. They make
// the gateway no free bandwidth source and keep one tether diag full run
// from a home line whole: a run uses up to 16 streams per direction, one
// direction after the other, for at most 4 s each (netdiag's
// directionBudget), and reports a capped figure as capped
// (tether_rate_cap_mbps).
var DefaultPublicLimits = Limits{
	// 32: a run's 16 streams while the last direction's still end, or a
	// draft client (networkQuality) running both directions at once.
	MaxConcurrentPerClient: 32,
	// 64: two such clients at once; the pool is the outsiders', so
	// filling it locks out no enrolled device.
	MaxConcurrent: 64,
	// 100 Mbit/s per direction: a tenth of a 1 Gbit/s gateway link. A
	// faster line measures at the cap and is reported as capped.
	MaxMbps: 100,
	// 256 MiB an hour: a full run at the cap moves at most 2 x 4 s x
	// 12.5 MB/s = 100 MB, so two runs in a row fit, and the gateway
	// feeds one client network no more than about 0.6 Mbit/s sustained.
	ClientBytes:       256 << 20,
	ClientBytesPeriod: time.Hour,
}

// DefaultTrustedLimits serve enrolled devices: the full service, with
// only the concurrency bounds of old, so a device measures its line as
// it is.
var DefaultTrustedLimits = Limits{
	// 32: a full test uses up to 16 streams per direction plus probes.
	MaxConcurrentPerClient: 32,
	// 128: four full tests at once. Beyond it clients get 429 and retry.
	MaxConcurrent: 128,
	MaxMbps:       NoLimit,
	ClientBytes:   NoLimit,
}

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	// BaseURL is the public base URL written into the config document,
	// e.g. https://gw.example.com:8443. Empty: derived from the
	// connection's local address and TLS state, never from the request's
	// Host header, which the client writes.
	BaseURL string
	// MaxDownBytes caps one /down or /large response; zero means
	// DefaultMaxDownBytes.
	MaxDownBytes int64
	// MaxUpBytes caps /upload and /up; zero means DefaultMaxUpBytes.
	MaxUpBytes int64
	// LargeObjectBytes is the size of /large before MaxDownBytes caps
	// it; zero means DefaultLargeObjectBytes.
	LargeObjectBytes int64
	// StallTimeout ends a transfer that moves no byte for this long;
	// zero means DefaultStallTimeout.
	StallTimeout time.Duration
	// Public bounds the transfers of clients that did not authenticate,
	// Trusted those of enrolled devices. The pools are apart (their own
	// counts, guards and budgets), so outsiders never lock devices out.
	Public, Trusted Limits
	// Authenticate reports whether a request comes from an enrolled
	// device, to be served from the Trusted pool. Nil: nobody is.
	Authenticate func(*http.Request) bool
	// TrustAll serves every request from the Trusted pool: the service
	// inside the tunnel, where every client is an enrolled peer. Set it
	// or Authenticate, not both.
	TrustAll bool
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats are the service's counters.
type Stats struct {
	BytesDown, BytesUp int64
	// Rejected counts transfers refused (429) by a concurrency limit or
	// a spent byte budget.
	Rejected int64
	// Stalled counts transfers ended for moving nothing for StallTimeout.
	Stalled int64
	// BudgetCut counts transfers ended short by a spent byte budget.
	BudgetCut int64
	// ActivePublic and ActiveTrusted are the transfers running now.
	ActivePublic, ActiveTrusted int
}

// Server is the measurement service.
type Server struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	block  []byte

	public, trusted *pool

	mu sync.Mutex
	// running holds each transfer's controller, so Stop can unblock a
	// write to a client that stopped reading.
	running map[*http.ResponseController]struct{}

	// stop is closed by Stop: transfers end so a shutdown can drain.
	stop     chan struct{}
	stopOnce sync.Once

	bytesDown, bytesUp, rejected, stalled, budgetCut atomic.Int64
}

// pool is one set of Limits in force: its own counts, guards and budget.
type pool struct {
	name string
	lim  Limits

	mu     sync.Mutex
	active map[netip.Prefix]int
	total  int

	// downGuard and upGuard pace each direction; nil when unguarded.
	downGuard, upGuard *rate.Limiter
	// budget holds each client's bytes; nil when unlimited.
	budget *keyrate.Limiter
}

// New validates cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.MaxDownBytes == 0 {
		cfg.MaxDownBytes = DefaultMaxDownBytes
	}
	if cfg.MaxUpBytes == 0 {
		cfg.MaxUpBytes = DefaultMaxUpBytes
	}
	if cfg.LargeObjectBytes == 0 {
		cfg.LargeObjectBytes = DefaultLargeObjectBytes
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.MaxDownBytes < 0 || cfg.MaxUpBytes < 0 || cfg.LargeObjectBytes < 0 || cfg.StallTimeout < 0 {
		return nil, errors.New("measureserver: byte caps and the stall timeout must not be negative")
	}
	if cfg.BaseURL != "" && !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("measureserver: base URL %q must start with http:// or https://", cfg.BaseURL)
	}
	if cfg.TrustAll && cfg.Authenticate != nil {
		return nil, errors.New("measureserver: set TrustAll or Authenticate, not both")
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, now: cfg.Now, block: make([]byte, fillBlock), stop: make(chan struct{}),
		running: make(map[*http.ResponseController]struct{})}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.public, err = newPool("public", cfg.Public, DefaultPublicLimits, s.now); err != nil {
		return nil, err
	}
	if s.trusted, err = newPool("trusted", cfg.Trusted, DefaultTrustedLimits, s.now); err != nil {
		return nil, err
	}
	_, _ = rand.Read(s.block) // incompressible, so no middlebox inflates the figures
	return s, nil
}

func newPool(name string, l, def Limits, now func() time.Time) (*pool, error) {
	if l.MaxConcurrentPerClient == 0 {
		l.MaxConcurrentPerClient = def.MaxConcurrentPerClient
	}
	if l.MaxConcurrent == 0 {
		l.MaxConcurrent = def.MaxConcurrent
	}
	if l.MaxMbps == 0 {
		l.MaxMbps = def.MaxMbps
	}
	if l.ClientBytes == 0 {
		l.ClientBytes, l.ClientBytesPeriod = def.ClientBytes, cmp.Or(l.ClientBytesPeriod, def.ClientBytesPeriod)
	}
	if l.ClientBytesPeriod == 0 {
		l.ClientBytesPeriod = DefaultClientBytesPeriod
	}
	if l.V6Bits == 0 {
		l.V6Bits = def.V6Bits
	}
	switch {
	case l.MaxConcurrentPerClient < 0 || l.MaxConcurrent < 0:
		return nil, fmt.Errorf("measureserver: %s limits: concurrency must not be negative", name)
	case l.MaxMbps < 0 && l.MaxMbps != NoLimit:
		return nil, fmt.Errorf("measureserver: %s limits: max Mbit/s must be positive or NoLimit", name)
	case l.ClientBytes != NoLimit && l.ClientBytes < readChunk:
		return nil, fmt.Errorf("measureserver: %s limits: a client's byte budget must be at least %d bytes, one read, or NoLimit", name, readChunk)
	case l.ClientBytesPeriod < 0:
		return nil, fmt.Errorf("measureserver: %s limits: the budget period must not be negative", name)
	case l.V6Bits < 0 || l.V6Bits > 128:
		return nil, fmt.Errorf("measureserver: %s limits: IPv6 prefix length %d is not 0 to 128", name, l.V6Bits)
	}
	p := &pool{name: name, lim: l, active: make(map[netip.Prefix]int)}
	if l.MaxMbps > 0 {
		bps := l.MaxMbps * 1e6 / 8
		// A burst of 10 ms at the guard's rate, and never below one chunk.
		burst := max(int(bps/100), writeChunk)
		p.downGuard = rate.NewLimiter(rate.Limit(bps), burst)
		p.upGuard = rate.NewLimiter(rate.Limit(bps), burst)
	}
	if l.ClientBytes > 0 {
		p.budget = keyrate.New(keyrate.Config{Rate: float64(l.ClientBytes) / l.ClientBytesPeriod.Seconds(),
			Burst: float64(l.ClientBytes), Now: now})
	}
	return p, nil
}

// capMbps is the guard a client of the pool meets, for the config
// document; zero when there is none.
func (p *pool) capMbps() float64 { return max(p.lim.MaxMbps, 0) }

// Stop ends every transfer in progress and refuses new ones (503). A
// speed test is open-ended, so a graceful shutdown would otherwise wait
// for it; register Stop with http.Server.RegisterOnShutdown. Idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.mu.Lock()
		defer s.mu.Unlock()
		for rc := range s.running {
			now := time.Now()
			_ = rc.SetWriteDeadline(now)
			_ = rc.SetReadDeadline(now)
		}
	})
}

func (s *Server) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// Stats returns the counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	st := Stats{BytesDown: s.bytesDown.Load(), BytesUp: s.bytesUp.Load(), Rejected: s.rejected.Load(),
		Stalled: s.stalled.Load(), BudgetCut: s.budgetCut.Load()}
	st.ActivePublic, st.ActiveTrusted = s.public.running(), s.trusted.running()
	return st
}

func (p *pool) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// NewHTTPServer returns an http.Server for h that speaks HTTP/1.1 and
// HTTP/2, including HTTP/2 without TLS (h2c). It sets no write timeout:
// large transfers run as long as the client keeps them moving (see
// Config.StallTimeout).
func NewHTTPServer(h http.Handler) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{Handler: h, Protocols: p, ReadHeaderTimeout: readHeaderTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
				c = tc.NetConn() // under TLS, tune the TCP connection
			}
			if tc, ok := c.(interface{ SetReadBuffer(int) error }); ok {
				_ = tc.SetReadBuffer(ReceiveBuffer)
			}
			setCongestionControl(c)
			return ctx
		}}
}

// Handler serves the service's endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathConfig, s.config)
	mux.HandleFunc("GET "+PathSmall, func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", "1")
		_, _ = w.Write([]byte{'x'})
	})
	mux.HandleFunc("GET "+PathLarge, s.limited(func(w http.ResponseWriter, r *http.Request, t *transfer) {
		s.stream(w, r, t, min(s.cfg.LargeObjectBytes, s.cfg.MaxDownBytes))
	}))
	mux.HandleFunc("GET "+PathDown, s.limited(s.down))
	mux.HandleFunc("POST "+PathUpload, s.limited(s.up))
	mux.HandleFunc("POST "+PathUp, s.limited(s.up))
	mux.HandleFunc("GET "+PathGenerate, func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+PathIP, s.ip)
	return mux
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store, no-transform")
}

// configDoc is the draft's config document ("Well-Known URI For Test
// Server Discovery"). It carries both the current names (-06:
// small_download_url and so on) and the original ones (-00:
// small_https_download_url...), which goresponsiveness still reads, as
// Apple's and Cloudflare's servers do; clients ignore names they don't know.
type configDoc struct {
	Version int `json:"version"`
	URLs    struct {
		Small     string `json:"small_download_url"`
		Large     string `json:"large_download_url"`
		Upload    string `json:"upload_url"`
		SmallHTTP string `json:"small_https_download_url"`
		LargeHTTP string `json:"large_https_download_url"`
		UploadOld string `json:"https_upload_url"`
	} `json:"urls"`
	TestEndpoint string `json:"test_endpoint,omitempty"`
	// RateCapMbps is a Tether extension: the bandwidth guard, per
	// direction, so a client can tell the server's limit from its line's.
	RateCapMbps float64 `json:"tether_rate_cap_mbps,omitempty"`
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	base, err := s.baseURL(r)
	if err != nil {
		s.logger.Warn("measureserver: no base URL for the config document", "err", err)
		http.Error(w, "the server cannot tell its own address; configure its base URL", http.StatusInternalServerError)
		return
	}
	var doc configDoc
	doc.Version = 1
	doc.URLs.Small, doc.URLs.Large, doc.URLs.Upload = base+PathSmall, base+PathLarge, base+PathUpload
	doc.URLs.SmallHTTP, doc.URLs.LargeHTTP, doc.URLs.UploadOld = doc.URLs.Small, doc.URLs.Large, doc.URLs.Upload
	doc.RateCapMbps = s.poolFor(r).capMbps()
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// baseURL is the configured base URL or, when there is none, the one the
// connection itself was made to: its local address and whether it is
// TLS. The Host header is the client's to write, so a forged one would
// send other clients' tests elsewhere through a cache or a shared link.
func (s *Server) baseURL(r *http.Request) (string, error) {
	if s.cfg.BaseURL != "" {
		return strings.TrimSuffix(s.cfg.BaseURL, "/"), nil
	}
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if la == nil {
		return "", errors.New("the request carries no local address")
	}
	ap, err := netip.ParseAddrPort(la.String())
	if err != nil {
		return "", fmt.Errorf("local address %q: %w", la, err)
	}
	a := ap.Addr().Unmap()
	host := a.WithZone("").String()
	if a.Is6() {
		if z := a.Zone(); z != "" {
			host += "%25" + url.PathEscape(z) // RFC 6874
		}
		host = "[" + host + "]"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + host + ":" + strconv.Itoa(int(ap.Port())), nil
}

// poolFor is the pool a request is served from.
func (s *Server) poolFor(r *http.Request) *pool {
	if s.cfg.TrustAll || (s.cfg.Authenticate != nil && s.cfg.Authenticate(r)) {
		return s.trusted
	}
	return s.public
}

// transfer is one admitted download or upload.
type transfer struct {
	s    *Server
	pool *pool
	key  netip.Prefix
	rc   *http.ResponseController
	// armed is when the stall deadline's countdown last started; moved
	// is when a byte last moved, or the guard last let one go.
	armed, moved time.Time
}

// limited admits a transfer into its pool, within the pool's concurrency
// limits, and releases it when h returns.
func (s *Server) limited(h func(http.ResponseWriter, *http.Request, *transfer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := s.poolFor(r)
		key := keyrate.Key(clientIP(r), 0, p.lim.V6Bits)
		t := &transfer{s: s, pool: p, key: key, rc: http.NewResponseController(w), moved: time.Now()}
		p.mu.Lock()
		var refuse string
		switch {
		case s.stopped():
			refuse = "the gateway is shutting down"
		case p.active[key] >= p.lim.MaxConcurrentPerClient:
			refuse = fmt.Sprintf("more than %d concurrent transfers from %v", p.lim.MaxConcurrentPerClient, key)
		case p.total >= p.lim.MaxConcurrent:
			refuse = fmt.Sprintf("the gateway is running %d %s transfers, its limit; try again shortly", p.lim.MaxConcurrent, p.name)
		}
		if refuse != "" {
			p.mu.Unlock()
			code := http.StatusTooManyRequests
			if s.stopped() {
				code = http.StatusServiceUnavailable
			} else {
				s.rejected.Add(1)
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, refuse, code)
			return
		}
		p.active[key]++
		p.total++
		p.mu.Unlock()
		s.mu.Lock()
		s.running[t.rc] = struct{}{}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.running, t.rc)
			s.mu.Unlock()
			p.mu.Lock()
			if p.active[key]--; p.active[key] <= 0 {
				delete(p.active, key)
			}
			p.total--
			p.mu.Unlock()
			// A keep-alive connection's next response must not inherit
			// this transfer's deadlines.
			_ = t.rc.SetWriteDeadline(time.Time{})
			_ = t.rc.SetReadDeadline(time.Time{})
		}()
		h(w, r, t)
	}
}

// arm pushes the stall deadline of one direction back to StallTimeout
// from now, at most once per StallTimeout/stallRearm. It returns an
// error when the connection cannot take deadlines.
func (t *transfer) arm(set func(time.Time) error) error {
	now := time.Now()
	if !t.armed.IsZero() && now.Sub(t.armed) < t.s.cfg.StallTimeout/stallRearm {
		return nil
	}
	t.armed = now
	return set(now.Add(t.s.cfg.StallTimeout))
}

// pace waits for the guard to let n bytes go. An HTTP/2 stream's
// deadline fires even while no write is under way, so the deadline set
// by set is pushed past the wait first.
func (t *transfer) pace(ctx context.Context, guard *rate.Limiter, n int, set func(time.Time) error) error {
	now := time.Now()
	res := guard.ReserveN(now, n)
	if !res.OK() {
		return fmt.Errorf("measureserver: %d bytes exceed the guard's burst", n)
	}
	if d := res.DelayFrom(now); d > 0 {
		t.armed = now.Add(d)
		_ = set(t.armed.Add(t.s.cfg.StallTimeout))
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			res.Cancel()
			return ctx.Err()
		case <-timer.C:
		}
	}
	t.moved = time.Now()
	return nil
}

// ended accounts for a transfer whose read or write failed and reports
// whether it stalled: nothing moved for (nearly) StallTimeout. Otherwise
// the client left.
func (t *transfer) ended(err error) bool {
	quiet := time.Since(t.moved)
	if quiet < t.s.cfg.StallTimeout-t.s.cfg.StallTimeout/stallRearm || t.s.stopped() {
		return false
	}
	t.s.stalled.Add(1)
	t.s.logger.Debug("measureserver: ended a stalled transfer", "client", t.key, "quiet", quiet.Round(time.Millisecond), "err", err)
	return true
}

// spend takes n bytes from the client's budget.
func (t *transfer) spend(n int) bool {
	return t.pool.budget == nil || t.pool.budget.AllowN(t.key, float64(n))
}

// refuseSpent answers a transfer whose client's budget is spent.
func (t *transfer) refuseSpent(w http.ResponseWriter) {
	t.s.rejected.Add(1)
	l := t.pool.lim
	w.Header().Set("Retry-After", strconv.Itoa(int(l.ClientBytesPeriod.Seconds())))
	http.Error(w, fmt.Sprintf("%v spent its budget of %d bytes per %v; try again later", t.key, l.ClientBytes, l.ClientBytesPeriod), http.StatusTooManyRequests)
}

// noDeadlines answers a transfer the connection cannot bound.
func (t *transfer) noDeadlines(w http.ResponseWriter, err error) {
	t.s.logger.Error("measureserver: the connection takes no deadlines, so a stalled transfer could not end; refusing", "err", err)
	http.Error(w, "this server cannot bound a stalled transfer", http.StatusInternalServerError)
}

func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) down(w http.ResponseWriter, r *http.Request, t *transfer) {
	n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
	if err != nil || n < 0 || n > s.cfg.MaxDownBytes {
		http.Error(w, fmt.Sprintf("bytes must be an integer from 0 to %d", s.cfg.MaxDownBytes), http.StatusBadRequest)
		return
	}
	s.stream(w, r, t, n)
}

// stream writes n bytes of the random block, stopping when the client
// goes away, stops reading for StallTimeout, or spends its budget.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, t *transfer, n int64) {
	guard := t.pool.downGuard
	first := min(n, writeChunk)
	if !t.spend(int(first)) {
		t.refuseSpent(w)
		return
	}
	if err := t.arm(t.rc.SetWriteDeadline); err != nil {
		t.noDeadlines(w, err)
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	if n == 0 {
		w.WriteHeader(http.StatusOK)
	}
	off, paid := 0, first
	for n > 0 {
		chunk := s.block[off : off+writeChunk]
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if paid == 0 && !t.spend(len(chunk)) {
			s.budgetCut.Add(1)
			return // the body ends short: the client sees it cut
		}
		paid = 0
		if guard != nil && t.pace(r.Context(), guard, len(chunk), t.rc.SetWriteDeadline) != nil {
			return // the client went away while waiting
		}
		_ = t.arm(t.rc.SetWriteDeadline)
		if s.stopped() {
			return
		}
		m, err := w.Write(chunk)
		s.bytesDown.Add(int64(m))
		n -= int64(m)
		if err != nil {
			t.ended(err)
			return
		}
		t.moved = time.Now()
		if r.Context().Err() != nil {
			return
		}
		off = (off + writeChunk) % fillBlock
	}
}

// upResult is the body of an upload's answer.
type upResult struct {
	Bytes      int64 `json:"bytes"`
	DurationMS int64 `json:"duration_ms"` // first byte to last, server-side
}

func (s *Server) up(w http.ResponseWriter, r *http.Request, t *transfer) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUpBytes)
	guard := t.pool.upGuard
	buf := make([]byte, readChunk)
	if guard != nil {
		buf = buf[:guardChunk]
	}
	if err := t.arm(t.rc.SetReadDeadline); err != nil {
		t.noDeadlines(w, err)
		return
	}
	var total int64
	var first time.Time
	progress := r.Header.Get(HeaderUploadProgress) == "1"
	var reported time.Time
	report := func(final bool) {
		if now := time.Now(); final || now.Sub(reported) >= progressEvery {
			reported = now
			fmt.Fprintf(w, "%d\n", total)
			_ = t.rc.Flush()
		}
	}
	if progress {
		// HTTP/1.1 needs full duplex to answer while reading; HTTP/2
		// always is.
		if err := t.rc.EnableFullDuplex(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			progress = false
		}
	}
	if progress {
		noStore(w)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set(HeaderUploadProgress, "1")
		w.WriteHeader(http.StatusOK)
		_ = t.rc.Flush()
		// Errors after this point are a last line: the status is sent.
		w = progressErrors{w}
	}
	for {
		_ = t.arm(t.rc.SetReadDeadline)
		n, err := body.Read(buf)
		if n > 0 {
			t.moved = time.Now()
			if first.IsZero() {
				first = s.now()
			}
			if !t.spend(n) {
				if total == 0 {
					t.refuseSpent(w)
				} else {
					s.budgetCut.Add(1)
					http.Error(w, fmt.Sprintf("%v spent its byte budget after %d bytes", t.key, total), http.StatusTooManyRequests)
				}
				return
			}
			if guard != nil && t.pace(r.Context(), guard, n, t.rc.SetReadDeadline) != nil {
				return // the client went away while waiting
			}
		}
		if s.stopped() {
			return
		}
		total += int64(n)
		s.bytesUp.Add(int64(n))
		if progress && n > 0 && err == nil {
			report(false)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("upload larger than %d bytes", s.cfg.MaxUpBytes), http.StatusRequestEntityTooLarge)
				return
			}
			if t.ended(err) {
				http.Error(w, fmt.Sprintf("no upload bytes for %v", s.cfg.StallTimeout), http.StatusRequestTimeout)
			}
			return // the client went away or stalled
		}
	}
	if progress {
		report(true)
		return
	}
	res := upResult{Bytes: total}
	if !first.IsZero() {
		res.DurationMS = s.now().Sub(first).Milliseconds()
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// progressErrors turns http.Error, once a progress answer has started,
// into its last line.
type progressErrors struct{ http.ResponseWriter }

func (p progressErrors) WriteHeader(int) {}
func (p progressErrors) Header() http.Header {
	return http.Header{} // the answer's headers are sent
}

func (s *Server) ip(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	host, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		http.Error(w, "cannot tell your address", http.StatusInternalServerError)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/plain") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, host)
		return
	}
	p, _ := strconv.Atoi(port)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		IP   string `json:"ip"`
		Port int    `json:"port"`
	}{host, p})
}

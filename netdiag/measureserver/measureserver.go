package measureserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config, used where a field is zero.
const (
	// DefaultMaxDownBytes caps one /down request. 1 GiB lasts 8.6 s at
	// 1 Gbit/s, longer than any single speed-test request needs;
	// Cloudflare-style clients ask for at most a few hundred MB at a time.
	DefaultMaxDownBytes = 1 << 30
	// DefaultMaxUpBytes caps one /upload or /up request, for the same
	// reason. Tether's client keeps each POST under it (512 MiB) and starts
	// another.
	DefaultMaxUpBytes = 1 << 30
	// DefaultLargeObjectBytes is the size of /large. The draft asks for "at
	// least 8GB" so that a test never finishes it; 8 GiB is what its
	// reference server (network-quality/server) and Apache Traffic Server
	// example serve.
	DefaultLargeObjectBytes = 8 << 30
	// DefaultMaxConcurrentPerClient bounds concurrent transfers per client
	// IP. A responsiveness test runs up to about 16 load streams per
	// direction; 32 leaves room for that and stops one client from taking
	// the whole gateway.
	DefaultMaxConcurrentPerClient = 32
	// ReceiveBuffer is the socket receive buffer NewHTTPServer sets on
	// every connection. Linux grows receive windows from the RTT it
	// measures, so on a short path with a deep bottleneck queue autotuning
	// lags the queue and an upload never fills it: the line looks less
	// bloated than it is. A fixed 4 MiB buffer (iperf3's -w, in effect)
	// keeps the window out of the way up to 1 Gbit/s at 30 ms per stream.
	ReceiveBuffer = 4 << 20
)

// Timeouts and sizes.
const (
	// readHeaderTimeout drops connections that open and never send a
	// request header, so idle sockets cannot pile up.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections left idle between tests.
	// Clients reuse a connection within seconds during a test, and two
	// minutes leaves room for slow ones.
	idleTimeout = 2 * time.Minute
	// stallTimeout ends a transfer whose client has not read (download) or
	// sent (upload) a byte for this long. Without a write timeout, a client
	// that stops reading would otherwise keep its slot and goroutine
	// forever. 30 s is far beyond any queueing delay a live line shows.
	stallTimeout = 30 * time.Second
	// fillBlockBytes is the size of the random block that downloads repeat.
	// It is big enough that no compressor with a standard window (deflate:
	// 32 KiB) finds the repetition, and small enough to stay in cache.
	fillBlockBytes = 256 << 10
	// uploadBufBytes is the read buffer for an upload body.
	uploadBufBytes = 64 << 10
	// retryAfterSeconds is the Retry-After of a 429. By then a client's
	// ramp-up has usually ended a transfer or backed off.
	retryAfterSeconds = 1
)

// Paths served.
const (
	PathConfig   = "/.well-known/nq" // the draft's config document
	PathSmall    = "/small"          // 1 byte
	PathLarge    = "/large"          // Config.LargeObjectBytes, streamed
	PathUpload   = "/upload"         // POST sink advertised in the config
	PathDown     = "/down"           // GET ?bytes=N, Cloudflare-style
	PathUp       = "/up"             // POST sink, Cloudflare-style
	PathGenerate = "/generate_204"   // captive-portal check
	PathIP       = "/ip"             // the peer's address
)

// Paths lists every path the service serves, for mounting its handler in a
// larger mux (mux.Handle(p, s.Handler()) for each p).
var Paths = []string{PathConfig, PathSmall, PathLarge, PathUpload, PathDown, PathUp, PathGenerate, PathIP}

// ErrInvalidConfig is wrapped by New's errors.
var ErrInvalidConfig = errors.New("invalid measurement server config")

// Config configures a Server. The zero value is usable: every zero field
// means its default.
type Config struct {
	// BaseURL is the public base URL written into the config document,
	// e.g. "https://gw.example.com:8443". The scheme must be http or https.
	// It may have a path; the advertised URLs then sit under it, and the
	// caller must strip that prefix before Handler (http.StripPrefix).
	// Empty: each request's own scheme (TLS or not) and Host are used,
	// which is right unless a proxy in front rewrites them.
	BaseURL string
	// MaxDownBytes caps N in /down?bytes=N. Zero means
	// DefaultMaxDownBytes.
	MaxDownBytes int64
	// MaxUpBytes caps one /upload or /up body; a larger one gets 413. Zero
	// means DefaultMaxUpBytes.
	MaxUpBytes int64
	// LargeObjectBytes is the size advertised and streamed by /large. Zero
	// means DefaultLargeObjectBytes.
	LargeObjectBytes int64
	// MaxConcurrentPerClient bounds concurrent transfers (/large, /down,
	// /upload, /up) per client IP; the next one gets 429 with
	// Retry-After. Zero means DefaultMaxConcurrentPerClient.
	MaxConcurrentPerClient int
	// Logger receives debug logs of rejected and aborted transfers. Nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock that times uploads. Nil means time.Now. Stall
	// deadlines always use the real clock, as sockets do.
	Now func() time.Time
}

// Stats are the service's counters since New. The byte and rejection
// counts only grow, so they can be exported as Prometheus counters.
type Stats struct {
	// BytesDown is body bytes written by /large and /down.
	BytesDown uint64
	// BytesUp is body bytes read by /upload and /up.
	BytesUp uint64
	// RejectedByLimit is requests answered 429 by the per-client limit.
	RejectedByLimit uint64
	// ActiveTransfers is transfers in progress now, a gauge.
	ActiveTransfers int64
}

// Server is the measurement service. Create it with New. It is safe for
// concurrent use, and one Server may back several http.Servers.
type Server struct {
	cfg     Config
	base    *url.URL // parsed cfg.BaseURL; nil derives it from the request
	logger  *slog.Logger
	now     func() time.Time
	block   []byte // random, read-only once New returns
	stall   time.Duration
	bufPool sync.Pool // *[]byte of uploadBufBytes

	limit struct {
		mu     sync.Mutex
		active map[netip.Addr]int // transfers in progress per client IP
	}

	bytesDown, bytesUp, rejected atomic.Uint64
	transfers                    atomic.Int64
}

// New checks cfg, fills in the defaults and returns a Server. The error
// wraps ErrInvalidConfig and names the field at fault.
func New(cfg Config) (*Server, error) {
	for _, f := range []struct {
		name string
		v    int64
		def  int64
	}{
		{"MaxDownBytes", cfg.MaxDownBytes, DefaultMaxDownBytes},
		{"MaxUpBytes", cfg.MaxUpBytes, DefaultMaxUpBytes},
		{"LargeObjectBytes", cfg.LargeObjectBytes, DefaultLargeObjectBytes},
		{"MaxConcurrentPerClient", int64(cfg.MaxConcurrentPerClient), DefaultMaxConcurrentPerClient},
	} {
		if f.v < 0 {
			return nil, fmt.Errorf("measureserver: %s is %d; it must be positive, or zero for the default %d: %w", f.name, f.v, f.def, ErrInvalidConfig)
		}
	}
	if cfg.MaxDownBytes == 0 {
		cfg.MaxDownBytes = DefaultMaxDownBytes
	}
	if cfg.MaxUpBytes == 0 {
		cfg.MaxUpBytes = DefaultMaxUpBytes
	}
	if cfg.LargeObjectBytes == 0 {
		cfg.LargeObjectBytes = DefaultLargeObjectBytes
	}
	if cfg.MaxConcurrentPerClient == 0 {
		cfg.MaxConcurrentPerClient = DefaultMaxConcurrentPerClient
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, now: cfg.Now, stall: stallTimeout}
	if cfg.BaseURL != "" {
		u, err := parseBaseURL(cfg.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("measureserver: BaseURL %q: %w", cfg.BaseURL, err)
		}
		s.base = u
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.limit.active = make(map[netip.Addr]int)
	s.block = make([]byte, fillBlockBytes)
	_, _ = rand.Read(s.block) // never fails since Go 1.24; incompressible so no middlebox inflates the figures
	s.bufPool.New = func() any { b := make([]byte, uploadBufBytes); return &b }
	return s, nil
}

// parseBaseURL accepts an absolute http or https URL with a host and
// nothing after the path.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: scheme must be http:// or https://, like https://gw.example.com:8443", ErrInvalidConfig)
	case u.Host == "":
		return nil, fmt.Errorf("%w: no host", ErrInvalidConfig)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("%w: no user info, query or fragment allowed", ErrInvalidConfig)
	}
	return u, nil
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	return Stats{
		BytesDown:       s.bytesDown.Load(),
		BytesUp:         s.bytesUp.Load(),
		RejectedByLimit: s.rejected.Load(),
		ActiveTransfers: s.transfers.Load(),
	}
}

// Handler returns the handler for Paths. Methods other than the ones
// listed in the package comment get 405 with Allow (HEAD works wherever
// GET does), and unknown paths get 404. Every response says
// Cache-Control: no-store, no-transform.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathConfig, s.serveConfig)
	mux.HandleFunc("GET "+PathSmall, serveSmall)
	mux.HandleFunc("GET "+PathLarge, s.limited(s.serveLarge))
	mux.HandleFunc("GET "+PathDown, s.limited(s.serveDown))
	mux.HandleFunc("POST "+PathUpload, s.limited(s.serveUpload))
	mux.HandleFunc("POST "+PathUp, s.limited(s.serveUpload))
	mux.HandleFunc("GET "+PathGenerate, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+PathIP, serveIP)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Set before the mux runs so that 404, 405 and 429 carry it too:
		// a cached or recompressed answer would falsify a measurement.
		w.Header().Set("Cache-Control", "no-store, no-transform")
		mux.ServeHTTP(w, r)
	})
}

// serveSmall is the draft's small object: one byte, the fewest header
// bytes we can manage.
func serveSmall(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", "1")
	_, _ = w.Write([]byte{'x'})
}

// NewHTTPServer returns an http.Server for h that speaks HTTP/1.1, HTTP/2
// over TLS and HTTP/2 without TLS (h2c, prior knowledge). ReadHeaderTimeout
// is 10 s, idle connections close after 2 minutes, and there is no
// WriteTimeout or ReadTimeout, because transfers last as long as the
// client wants (the handler ends stalled ones itself). Each accepted TCP
// connection gets a ReceiveBuffer-sized receive buffer and, on Linux, the
// CUBIC congestion control (see congestionControl). Callers may change
// the fields before serving.
func NewHTTPServer(h http.Handler) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         p,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok { // when served with ServeTLS
				c = tc.NetConn()
			}
			if tc, ok := c.(interface{ SetReadBuffer(int) error }); ok {
				_ = tc.SetReadBuffer(ReceiveBuffer)
			}
			setCongestionControl(c)
			return ctx
		},
	}
}

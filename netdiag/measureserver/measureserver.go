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
package measureserver

import (
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	// DefaultMaxDownBytes caps one /down request: 1 GiB is 8 s at 1 Gbit/s,
	// more than any single test needs.
	DefaultMaxDownBytes = 1 << 30
	// DefaultMaxUpBytes caps one upload for the same reason.
	DefaultMaxUpBytes = 1 << 30
	// DefaultLargeObjectBytes is the large download's size. The draft asks
	// for an object large enough that a test never finishes it; 8 GiB is
	// what its reference servers advertise.
	DefaultLargeObjectBytes = 8 << 30
	// DefaultMaxConcurrentPerClient bounds transfers per client IP: a test
	// uses up to 16 streams per direction plus probes; 32 leaves room and
	// stops one client from exhausting the gateway.
	DefaultMaxConcurrentPerClient = 32
	// DefaultMaxConcurrent bounds transfers from all clients together:
	// four full tests at once. Beyond it clients get 429 and retry.
	DefaultMaxConcurrent = 128
	// guardChunk is the write and read size while the bandwidth guard is
	// on: small enough that the guard paces smoothly rather than in
	// 256 KiB bursts that would fill the gateway's own queues.
	guardChunk = 32 << 10
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

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	// BaseURL is the public base URL written into the config document,
	// e.g. https://gw.example.com:8443. Empty: derived from each request's
	// Host and TLS state.
	BaseURL string
	// MaxDownBytes caps /down; zero means DefaultMaxDownBytes.
	MaxDownBytes int64
	// MaxUpBytes caps /upload and /up; zero means DefaultMaxUpBytes.
	MaxUpBytes int64
	// LargeObjectBytes is the size of /large; zero means
	// DefaultLargeObjectBytes.
	LargeObjectBytes int64
	// MaxConcurrentPerClient bounds concurrent transfers per client IP
	// (inside the tunnel, per peer); zero means
	// DefaultMaxConcurrentPerClient.
	MaxConcurrentPerClient int
	// MaxConcurrent bounds concurrent transfers from everyone; zero means
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxMbps is the bandwidth guard: each direction's transfers, from
	// all clients together, are paced to at most this many Mbit/s, so
	// speed tests leave the gateway's link to WireGuard and DNS. Zero
	// turns the guard off.
	MaxMbps float64
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats are the service's counters.
type Stats struct {
	BytesDown, BytesUp, Rejected int64
}

// Server is the measurement service.
type Server struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	block  []byte

	mu     sync.Mutex
	active map[netip.Addr]int
	total  int
	// running holds each transfer's controller, so Stop can unblock a
	// write to a client that stopped reading.
	running map[*http.ResponseController]struct{}

	// stop is closed by Stop: transfers end so a shutdown can drain.
	stop     chan struct{}
	stopOnce sync.Once

	// downGuard and upGuard pace each direction; nil when unguarded.
	downGuard, upGuard *rate.Limiter

	bytesDown, bytesUp, rejected atomic.Int64
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
	if cfg.MaxConcurrentPerClient == 0 {
		cfg.MaxConcurrentPerClient = DefaultMaxConcurrentPerClient
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxDownBytes < 0 || cfg.MaxUpBytes < 0 || cfg.LargeObjectBytes < 0 || cfg.MaxConcurrentPerClient < 0 || cfg.MaxConcurrent < 0 || cfg.MaxMbps < 0 {
		return nil, errors.New("measureserver: limits must not be negative")
	}
	if cfg.BaseURL != "" && !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("measureserver: base URL %q must start with http:// or https://", cfg.BaseURL)
	}
	s := &Server{cfg: cfg, logger: cfg.Logger, now: cfg.Now, active: make(map[netip.Addr]int), block: make([]byte, fillBlock), stop: make(chan struct{}),
		running: make(map[*http.ResponseController]struct{})}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	_, _ = rand.Read(s.block) // incompressible, so no middlebox inflates the figures
	if cfg.MaxMbps > 0 {
		bps := cfg.MaxMbps * 1e6 / 8
		// A burst of 10 ms at the guard's rate, and never below one chunk.
		burst := max(int(bps/100), guardChunk)
		s.downGuard = rate.NewLimiter(rate.Limit(bps), burst)
		s.upGuard = rate.NewLimiter(rate.Limit(bps), burst)
	}
	return s, nil
}

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
	return Stats{BytesDown: s.bytesDown.Load(), BytesUp: s.bytesUp.Load(), Rejected: s.rejected.Load()}
}

// NewHTTPServer returns an http.Server for h that speaks HTTP/1.1 and
// HTTP/2, including HTTP/2 without TLS (h2c). It sets no write timeout:
// large transfers run as long as the client wants.
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
	mux.HandleFunc("GET "+PathLarge, s.limited(func(w http.ResponseWriter, r *http.Request) {
		s.stream(w, r, s.cfg.LargeObjectBytes)
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
	base := s.cfg.BaseURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	base = strings.TrimSuffix(base, "/")
	var doc configDoc
	doc.Version = 1
	doc.URLs.Small, doc.URLs.Large, doc.URLs.Upload = base+PathSmall, base+PathLarge, base+PathUpload
	doc.URLs.SmallHTTP, doc.URLs.LargeHTTP, doc.URLs.UploadOld = doc.URLs.Small, doc.URLs.Large, doc.URLs.Upload
	doc.RateCapMbps = s.cfg.MaxMbps
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// limited applies the per-client concurrency limit.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		rc := http.NewResponseController(w)
		s.mu.Lock()
		var refuse string
		switch {
		case s.stopped():
			refuse = "the gateway is shutting down"
		case s.active[ip] >= s.cfg.MaxConcurrentPerClient:
			refuse = fmt.Sprintf("more than %d concurrent transfers from %v", s.cfg.MaxConcurrentPerClient, ip)
		case s.total >= s.cfg.MaxConcurrent:
			refuse = fmt.Sprintf("the gateway is running %d transfers, its limit; try again shortly", s.cfg.MaxConcurrent)
		}
		if refuse != "" {
			s.mu.Unlock()
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
		s.active[ip]++
		s.total++
		s.running[rc] = struct{}{}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			if s.active[ip]--; s.active[ip] <= 0 {
				delete(s.active, ip)
			}
			s.total--
			delete(s.running, rc)
			s.mu.Unlock()
		}()
		h(w, r)
	}
}

func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) down(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
	if err != nil || n < 0 || n > s.cfg.MaxDownBytes {
		http.Error(w, fmt.Sprintf("bytes must be an integer from 0 to %d", s.cfg.MaxDownBytes), http.StatusBadRequest)
		return
	}
	s.stream(w, r, n)
}

// stream writes n bytes of the random block, stopping when the client
// goes away.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, n int64) {
	noStore(w)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	block := s.block
	if s.downGuard != nil {
		block = block[:guardChunk]
	}
	for n > 0 {
		chunk := block
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if s.downGuard != nil && s.downGuard.WaitN(r.Context(), len(chunk)) != nil {
			return // the client went away while waiting
		}
		m, err := w.Write(chunk)
		s.bytesDown.Add(int64(m))
		n -= int64(m)
		if err != nil || r.Context().Err() != nil || s.stopped() {
			return
		}
	}
}

// upResult is the body of an upload's answer.
type upResult struct {
	Bytes      int64 `json:"bytes"`
	DurationMS int64 `json:"duration_ms"` // first byte to last, server-side
}

func (s *Server) up(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUpBytes)
	buf := make([]byte, 64<<10)
	if s.upGuard != nil {
		buf = buf[:guardChunk]
	}
	var total int64
	var first time.Time
	for {
		n, err := body.Read(buf)
		if n > 0 && first.IsZero() {
			first = s.now()
		}
		if n > 0 && s.upGuard != nil && s.upGuard.WaitN(r.Context(), n) != nil {
			return // the client went away while waiting
		}
		if s.stopped() {
			return
		}
		total += int64(n)
		s.bytesUp.Add(int64(n))
		if err == io.EOF {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("upload larger than %d bytes", s.cfg.MaxUpBytes), http.StatusRequestEntityTooLarge)
				return
			}
			return // the client went away
		}
	}
	res := upResult{Bytes: total}
	if !first.IsZero() {
		res.DurationMS = s.now().Sub(first).Milliseconds()
	}
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
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

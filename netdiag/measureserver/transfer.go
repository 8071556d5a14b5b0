package measureserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// limited admits h only while the client's IP has fewer than
// MaxConcurrentPerClient transfers in progress. The slot is held until h
// returns.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		if !s.acquire(ip) {
			s.rejected.Add(1)
			s.logger.Debug("measureserver: transfer refused, client at its limit", "client", ip, "limit", s.cfg.MaxConcurrentPerClient, "path", r.URL.Path)
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
			http.Error(w, fmt.Sprintf("%v already has %d transfers in progress, the most allowed per client; retry after %d s",
				ip, s.cfg.MaxConcurrentPerClient, retryAfterSeconds), http.StatusTooManyRequests)
			return
		}
		s.transfers.Add(1)
		defer func() {
			s.release(ip)
			s.transfers.Add(-1)
		}()
		h(w, r)
	}
}

func (s *Server) acquire(ip netip.Addr) bool {
	s.limit.mu.Lock()
	defer s.limit.mu.Unlock()
	if s.limit.active[ip] >= s.cfg.MaxConcurrentPerClient {
		return false
	}
	s.limit.active[ip]++
	return true
}

func (s *Server) release(ip netip.Addr) {
	s.limit.mu.Lock()
	defer s.limit.mu.Unlock()
	if s.limit.active[ip]--; s.limit.active[ip] <= 0 {
		delete(s.limit.active, ip) // keep the map as small as the set of active clients
	}
}

// clientIP is the peer's IP from the connection, IPv4-mapped addresses
// unmapped. Forwarding headers are ignored: a client could forge them. A
// RemoteAddr that does not parse (not TCP) yields the zero Addr, and all
// such peers share one limit.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) serveLarge(w http.ResponseWriter, r *http.Request) {
	s.stream(w, r, s.cfg.LargeObjectBytes)
}

// serveDown serves exactly N bytes for ?bytes=N.
func (s *Server) serveDown(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("bytes")
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil || n < 0 || n > s.cfg.MaxDownBytes {
		if len(q) > 32 {
			q = q[:32] + "…"
		}
		http.Error(w, fmt.Sprintf("bytes=%q: bytes must be an integer from 0 to %d, this server's per-request limit; for more, send several requests",
			q, s.cfg.MaxDownBytes), http.StatusBadRequest)
		return
	}
	s.stream(w, r, n)
}

// stream writes n bytes of the random block with Content-Length n. It
// stops early when the client goes away: the request's context ends, a
// write fails, or no write completes within the stall timeout.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, n int64) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	if r.Method == http.MethodHead {
		return // net/http would swallow the body anyway; don't loop over it
	}
	guard := stallGuard{set: http.NewResponseController(w).SetWriteDeadline, timeout: s.stall}
	defer guard.clear()
	ctx := r.Context()
	for sent := int64(0); sent < n; {
		if err := ctx.Err(); err != nil {
			s.logger.Debug("measureserver: download ended by client", "client", clientIP(r), "path", r.URL.Path, "sent", sent, "of", n)
			return
		}
		chunk := s.block
		if rem := n - sent; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		m, err := w.Write(chunk)
		sent += int64(m)
		s.bytesDown.Add(uint64(m))
		if err != nil {
			s.logger.Debug("measureserver: download aborted", "client", clientIP(r), "path", r.URL.Path, "sent", sent, "of", n, "err", err)
			return
		}
	}
}

// uploadResult is the JSON answer to an upload.
type uploadResult struct {
	// Bytes is body bytes received.
	Bytes int64 `json:"bytes"`
	// DurationMS is the time from the first body byte read to the last,
	// in milliseconds with microsecond resolution; 0 for bodies that
	// arrive in one read.
	DurationMS float64 `json:"duration_ms"`
}

// serveUpload reads and discards the body, up to MaxUpBytes, and answers
// with its size and duration.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	limit := s.cfg.MaxUpBytes
	if r.ContentLength > limit {
		s.tooLarge(w, r.ContentLength)
		return
	}
	rc := http.NewResponseController(w)
	guard := stallGuard{set: rc.SetReadDeadline, timeout: s.stall}
	defer guard.clear()
	guard.touch() // a client that sends headers and then nothing
	body := http.MaxBytesReader(w, r.Body, limit)
	bufp := s.bufPool.Get().(*[]byte)
	defer s.bufPool.Put(bufp)
	n, first, last, err := drain(body, *bufp, s.now, func(m int) {
		guard.touch()
		s.bytesUp.Add(uint64(m))
	})
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.tooLarge(w, tooBig.Limit+1)
			return
		}
		s.logger.Debug("measureserver: upload aborted", "client", clientIP(r), "path", r.URL.Path, "received", n, "err", err)
		return // the client is gone or stalled; nobody reads an answer
	}
	res := uploadResult{Bytes: n}
	if n > 0 {
		res.DurationMS = math.Round(float64(last.Sub(first).Microseconds())) / 1e3
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) tooLarge(w http.ResponseWriter, size int64) {
	http.Error(w, fmt.Sprintf("upload body of %d bytes or more exceeds this server's per-request limit of %d bytes; send several smaller POSTs",
		size, s.cfg.MaxUpBytes), http.StatusRequestEntityTooLarge)
}

// drain reads r to EOF into buf, calling onRead with the size of every
// non-empty read. It reports the total, and now() taken right after the
// first and the last non-empty read. The error is nil at EOF.
func drain(r io.Reader, buf []byte, now func() time.Time, onRead func(int)) (n int64, first, last time.Time, err error) {
	for {
		m, err := r.Read(buf)
		if m > 0 {
			last = now()
			if n == 0 {
				first = last
			}
			n += int64(m)
			onRead(m)
		}
		if errors.Is(err, io.EOF) {
			return n, first, last, nil
		}
		if err != nil {
			return n, first, last, err
		}
	}
}

// stallGuard keeps pushing a connection deadline timeout ahead while a
// transfer makes progress, so only a stalled one hits it. Setting a
// deadline costs a message to the connection's goroutine under HTTP/2, so
// it is refreshed only after a quarter of the timeout has passed.
// Deadlines use the real clock, as sockets do.
type stallGuard struct {
	set       func(time.Time) error // http.ResponseController's setter
	timeout   time.Duration
	refreshed time.Time // when the deadline was last pushed
	off       bool      // set unsupported (a test recorder): do nothing
}

func (g *stallGuard) touch() {
	if g.off {
		return
	}
	now := time.Now()
	if !g.refreshed.IsZero() && now.Sub(g.refreshed) < g.timeout/4 {
		return
	}
	if err := g.set(now.Add(g.timeout)); err != nil {
		g.off = true
		return
	}
	g.refreshed = now
}

// clear removes the deadline. HTTP/1 keeps a handler's write deadline on
// the connection, where it would hit the next request.
func (g *stallGuard) clear() {
	if !g.off && !g.refreshed.IsZero() {
		_ = g.set(time.Time{})
	}
}

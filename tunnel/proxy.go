package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dialFunc opens a connection; the userspace engine's picks the tunnel or
// the host network by the plan.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Proxy limits and timeouts.
const (
	proxyHandshakeTimeout = 10 * time.Second
	proxyDialTimeout      = 15 * time.Second
	maxProxyConns         = 1024
)

// proxyServer runs the SOCKS5 and HTTP proxies on loopback listeners.
// It tracks every connection it holds, the application's and the
// upstream one (through the tunnel or direct), and every goroutine that
// serves them, so close can end them all without waiting on the network.
type proxyServer struct {
	dial dialFunc
	log  *slog.Logger
	sem  chan struct{}
	// ctx ends at close: every dial and plain HTTP request derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	https  []*http.Server
	wg     sync.WaitGroup
}

func newProxyServer(dial dialFunc, log *slog.Logger) *proxyServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &proxyServer{dial: dial, log: log, sem: make(chan struct{}, maxProxyConns), conns: map[net.Conn]struct{}{},
		ctx: ctx, cancel: cancel}
}

// begin counts a goroutine that close must wait for; false once closed.
// Counting under the lock close takes means close never misses one.
func (p *proxyServer) begin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// track registers c for close; once closed it closes c and reports false.
func (p *proxyServer) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxyServer) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// upstream is a connection the proxy opened; closing it also forgets it.
// CloseWrite half-closes where the connection can, else closes.
type upstream struct {
	net.Conn
	p *proxyServer
}

func (u *upstream) Close() error {
	u.p.untrack(u)
	return u.Conn.Close()
}

func (u *upstream) CloseWrite() error {
	if cw, ok := u.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return u.Close()
}

// dialUpstream dials through p.dial within proxyDialTimeout and returns a
// tracked connection. It returns as soon as ctx or the server ends, even
// if the dial itself does not: the netstack's resolver ignores
// cancellation and waits out its own timeouts. Such a dial finishes in a
// goroutine of its own, bounded by the timeout, that close does not wait
// for, and its late connection is closed.
func (p *proxyServer) dialUpstream(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, proxyDialTimeout)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := p.dial(ctx, network, addr)
		done <- result{c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		if p.ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, errProxyClosed)
		}
		return nil, fmt.Errorf("dial %s: %w", addr, ctx.Err())
	}
	if r.err != nil {
		return nil, r.err
	}
	up := &upstream{Conn: r.c, p: p}
	if !p.track(up) {
		return nil, fmt.Errorf("dial %s: %w", addr, errProxyClosed)
	}
	return up, nil
}

// errProxyClosed is the error of work cut short by close.
var errProxyClosed = errors.New("the proxy is shutting down")

// serveSOCKS accepts SOCKS5 clients on ln until it closes.
func (p *proxyServer) serveSOCKS(ln net.Listener) {
	if !p.begin() {
		ln.Close()
		return
	}
	p.mu.Lock()
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case p.sem <- struct{}{}:
			default:
				c.Close() // over the limit: refuse rather than queue
				continue
			}
			if !p.begin() {
				c.Close()
				<-p.sem
				return
			}
			go func() {
				defer p.wg.Done()
				defer func() { <-p.sem }()
				if !p.track(c) {
					return
				}
				defer p.untrack(c)
				defer c.Close()
				if err := p.socks5(c); err != nil {
					p.log.Debug("socks5", "client", c.RemoteAddr(), "err", err)
				}
			}()
		}
	}()
}

// SOCKS5 constants from RFC 1928.
const (
	socksVersion    = 5
	socksNoAuth     = 0
	socksNoMethods  = 0xff
	socksConnect    = 1
	socksAtypIPv4   = 1
	socksAtypDomain = 3
	socksAtypIPv6   = 4

	socksOK              = 0
	socksGeneralFailure  = 1
	socksHostUnreachable = 4
	socksConnRefused     = 5
	socksCmdUnsupported  = 7
	socksAtypUnsupported = 8
)

// socks5 serves one client: no authentication (the listener is loopback
// only), CONNECT only. Names are resolved by the dialer, so with socks5h
// clients DNS goes through the tunnel too.
func (p *proxyServer) socks5(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(proxyHandshakeTimeout))
	br := bufio.NewReader(c)
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if hdr[0] != socksVersion {
		return fmt.Errorf("greeting: version %d, want 5", hdr[0])
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	ok := false
	for _, m := range methods {
		ok = ok || m == socksNoAuth
	}
	if !ok {
		_, _ = c.Write([]byte{socksVersion, socksNoMethods})
		return errors.New("client offers no acceptable auth method")
	}
	if _, err := c.Write([]byte{socksVersion, socksNoAuth}); err != nil {
		return err
	}
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	reply := func(code byte) {
		_, _ = c.Write([]byte{socksVersion, code, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0})
	}
	if req[0] != socksVersion {
		return fmt.Errorf("request: version %d", req[0])
	}
	var host string
	switch req[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := 4
		if req[3] == socksAtypIPv6 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("request: %w", err)
		}
		a, _ := netip.AddrFromSlice(b)
		host = a.String()
	case socksAtypDomain:
		l, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("request: %w", err)
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("request: %w", err)
		}
		host = string(b)
	default:
		reply(socksAtypUnsupported)
		return fmt.Errorf("request: address type %d", req[3])
	}
	var pb [2]byte
	if _, err := io.ReadFull(br, pb[:]); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if req[1] != socksConnect {
		reply(socksCmdUnsupported)
		return fmt.Errorf("command %d is not supported (CONNECT only)", req[1])
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:]))))
	up, err := p.dialUpstream(p.ctx, "tcp", target)
	if err != nil {
		code := byte(socksHostUnreachable)
		// gVisor's refusals aren't syscall errors, only text.
		if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
			code = socksConnRefused
		} else if errors.Is(err, errBadTarget) {
			code = socksGeneralFailure
		}
		reply(code)
		return fmt.Errorf("dial %s: %w", target, err)
	}
	defer up.Close()
	bound := []byte{socksVersion, socksOK, 0, socksAtypIPv4, 0, 0, 0, 0, 0, 0}
	if ap, err := netip.ParseAddrPort(up.LocalAddr().String()); err == nil && ap.Addr().Unmap().Is4() {
		a4 := ap.Addr().Unmap().As4()
		copy(bound[4:8], a4[:])
		binary.BigEndian.PutUint16(bound[8:], ap.Port())
	}
	if _, err := c.Write(bound); err != nil {
		return err
	}
	_ = c.SetDeadline(time.Time{})
	return splice(c, br, up)
}

// errBadTarget marks a target the dialer refuses to try.
var errBadTarget = errors.New("bad target")

// splice copies both ways until both directions end, half-closing where
// the connections allow it. A direction that fails (rather than ending
// with EOF) closes both connections, so the other cannot wait forever on
// a peer that is gone.
func splice(client net.Conn, clientR io.Reader, up net.Conn) error {
	errc := make(chan error, 2)
	cp := func(dst net.Conn, src io.Reader) {
		_, err := io.Copy(dst, src)
		if err != nil {
			client.Close()
			up.Close()
		} else {
			closeWrite(dst)
		}
		errc <- err
	}
	go cp(up, clientR)
	go cp(client, up)
	err1, err2 := <-errc, <-errc
	return errors.Join(ignoreClosed(err1), ignoreClosed(err2))
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// serveHTTP runs the HTTP proxy: CONNECT tunnels, and plain http://
// requests in absolute form forwarded through the dialer.
func (p *proxyServer) serveHTTP(ln net.Listener) {
	tr := &http.Transport{
		DialContext:         p.dialUpstream,
		Proxy:               nil,
		MaxIdleConns:        16,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: proxyHandshakeTimeout,
	}
	rp := &httputil.ReverseProxy{
		Transport: tr,
		// A forward proxy passes the application's request on as it is:
		// the URL is already absolute, and the Forwarded headers are the
		// application's own.
		Rewrite: func(pr *httputil.ProxyRequest) {
			for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "tether proxy: "+err.Error(), http.StatusBadGateway)
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	srv := &http.Server{
		ReadHeaderTimeout: proxyHandshakeTimeout,
		BaseContext:       func(net.Listener) context.Context { return p.ctx },
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !p.begin() {
				http.Error(w, "tether proxy: "+errProxyClosed.Error(), http.StatusServiceUnavailable)
				return
			}
			defer p.wg.Done()
			if r.Method == http.MethodConnect {
				p.httpConnect(w, r)
				return
			}
			if r.URL.Scheme != "http" || r.URL.Host == "" {
				http.Error(w, "this is a proxy: send CONNECT, or a request with an absolute http:// URL", http.StatusBadRequest)
				return
			}
			rp.ServeHTTP(w, r)
		}),
	}
	if !p.begin() {
		ln.Close()
		return
	}
	p.mu.Lock()
	p.https = append(p.https, srv)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer tr.CloseIdleConnections()
		_ = srv.Serve(ln)
	}()
}

func (p *proxyServer) httpConnect(w http.ResponseWriter, r *http.Request) {
	up, err := p.dialUpstream(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, "tether proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer up.Close()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "tether proxy: cannot hijack", http.StatusInternalServerError)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	defer c.Close()
	if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	_ = splice(c, brw.Reader, up)
}

// close stops the listeners, cancels dials and requests in flight, ends
// every connection, the application's and the upstream one, and waits
// for the proxy's goroutines until ctx ends. Each connection gets an
// expired deadline as well as a Close, so a goroutine blocked on it
// returns even where a Close alone does not wake it. The error says what
// was still running when ctx ended.
func (p *proxyServer) close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	lns, conns, srvs := p.lns, p.conns, p.https
	p.lns, p.conns, p.https = nil, nil, nil
	p.mu.Unlock()
	p.cancel()
	for _, ln := range lns {
		ln.Close()
	}
	for _, srv := range srvs {
		srv.Close()
	}
	past := time.Unix(1, 0)
	for c := range conns {
		_ = c.SetDeadline(past)
		c.Close()
	}
	return waitUntil(ctx, wgDone(&p.wg), "the proxies' connections")
}

// waitUntil waits for done until ctx ends; what names what done marks.
func waitUntil(ctx context.Context, done <-chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-done: // both were ready
		return nil
	default:
		return fmt.Errorf("tunnel: %s did not end in time: %w", what, context.Cause(ctx))
	}
}

// wgDone returns a channel closed once wg's count reaches zero.
func wgDone(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

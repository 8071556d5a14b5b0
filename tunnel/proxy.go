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

// proxyServer runs the SOCKS5 and HTTP proxies on loopback listeners, and
// tracks connections so Close can end them all.
type proxyServer struct {
	dial dialFunc
	log  *slog.Logger
	sem  chan struct{}

	mu    sync.Mutex
	lns   []net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	http  *http.Server
}

func newProxyServer(dial dialFunc, log *slog.Logger) *proxyServer {
	return &proxyServer{dial: dial, log: log, sem: make(chan struct{}, maxProxyConns), conns: map[net.Conn]struct{}{}}
}

// track registers (add) or forgets a live connection. Registration counts
// in p.wg under the same lock close takes, so close waits for every
// connection it could not refuse.
func (p *proxyServer) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.conns == nil {
			return false
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
	} else {
		delete(p.conns, c)
		p.wg.Done()
	}
	return true
}

// serveSOCKS accepts SOCKS5 clients on ln until it closes.
func (p *proxyServer) serveSOCKS(ln net.Listener) {
	p.mu.Lock()
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	p.wg.Add(1)
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
			if !p.track(c, true) {
				c.Close()
				<-p.sem
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() { <-p.sem }()
				defer p.track(c, false)
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
	ctx, cancel := context.WithTimeout(context.Background(), proxyDialTimeout)
	up, err := p.dial(ctx, "tcp", target)
	cancel()
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
// the connections allow it.
func splice(client net.Conn, clientR io.Reader, up net.Conn) error {
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(up, clientR)
		closeWrite(up)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(client, up)
		closeWrite(client)
		errc <- err
	}()
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
		DialContext:         p.dial,
		Proxy:               nil,
		MaxIdleConns:        16,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: proxyHandshakeTimeout,
	}
	srv := &http.Server{
		ReadHeaderTimeout: proxyHandshakeTimeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect {
				p.httpConnect(w, r)
				return
			}
			if r.URL.Scheme != "http" || r.URL.Host == "" {
				http.Error(w, "this is a proxy: send CONNECT, or a request with an absolute http:// URL", http.StatusBadRequest)
				return
			}
			out := r.Clone(r.Context())
			out.RequestURI = ""
			for _, h := range []string{"Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade"} {
				out.Header.Del(h)
			}
			resp, err := tr.RoundTrip(out)
			if err != nil {
				http.Error(w, "tether proxy: "+err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, vs := range resp.Header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
		}),
	}
	p.mu.Lock()
	p.http = srv
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer tr.CloseIdleConnections()
		_ = srv.Serve(ln)
	}()
}

func (p *proxyServer) httpConnect(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), proxyDialTimeout)
	up, err := p.dial(ctx, "tcp", r.Host)
	cancel()
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
	defer c.Close()
	if !p.track(c, true) {
		return
	}
	defer p.track(c, false)
	if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	_ = splice(c, brw.Reader, up)
}

// close stops the listeners and ends every proxied connection.
func (p *proxyServer) close() {
	p.mu.Lock()
	lns, conns, srv := p.lns, p.conns, p.http
	p.lns, p.conns = nil, nil
	p.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	if srv != nil {
		srv.Close()
	}
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

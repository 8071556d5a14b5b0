package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/resolver"
)

// dialFrom connects to addr from the loopback address src, so one test
// process can be several clients.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.Dial("tcp", addr)
}

// stillOpen reports whether the server kept c: a read that times out
// means it is held open, EOF or a reset that it was closed.
func stillOpen(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestOneClientCannotHoldEveryConnection: the probe held about 20,000
// idle connections from one host until the gateway ran out of file
// descriptors, and health checks, DNS over TCP and forwarded DNS failed
// for everyone. Each listener now admits a bounded number of
// connections per client network, so one address holding as many as it
// likes cannot deny another.
func TestOneClientCannotHoldEveryConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DNS = &resolver.Config{Listen: "127.0.0.1:0", LocalZones: []resolver.LocalZone{{Name: "corp.test", Records: []string{"intranet IN A 10.77.0.10"}}}}
	s, base := startServer(t, cfg, Options{})
	api := s.Addr().String()
	dnsAddr := s.DNSAddr().String()

	hold := func(addr string, n int) (open int) {
		var conns []net.Conn
		t.Cleanup(func() {
			for _, c := range conns {
				c.Close()
			}
		})
		for range n {
			c, err := dialFrom("127.0.0.2", addr)
			if errors.Is(err, syscall.ECONNRESET) {
				continue // refused so fast the handshake saw the reset
			}
			require.NoError(t, err)
			conns = append(conns, c)
		}
		for _, c := range conns {
			if stillOpen(c) {
				open++
			}
		}
		return open
	}
	held := hold(api, 3*apiConnsPerClient)
	assert.Equal(t, apiConnsPerClient, held, "the API keeps %d of one client's idle connections", apiConnsPerClient)
	heldDNS := hold(dnsAddr, 3*dnsConnsPerClient)
	assert.Equal(t, dnsConnsPerClient, heldDNS, "DNS over TCP keeps %d of one client's connections", dnsConnsPerClient)

	// Another client is served on every listener meanwhile.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dialFrom("127.0.0.3", addr)
	}}}
	resp, err := hc.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	c, err := dialFrom("127.0.0.3", dnsAddr)
	require.NoError(t, err)
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion("intranet.corp.test.", dns.TypeA)
	dc := &dns.Conn{Conn: c}
	require.NoError(t, dc.WriteMsg(q))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	ans, err := dc.ReadMsg()
	require.NoError(t, err, "DNS over TCP answers another client")
	require.Len(t, ans.Answer, 1)
	assert.Positive(t, s.apiConns.Refused())
}

// TestIdleHTTP2ConnectionsAreClosed: an HTTP/2 connection that finished
// its preface and then said nothing was kept for ever, which is how one
// host held 20,000 of them.
func TestIdleHTTP2ConnectionsAreClosed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.API.IdleTimeout = 300 * time.Millisecond
	s, _ := startServer(t, cfg, Options{})
	for _, tc := range []struct {
		name, hello string
	}{
		// h2c with prior knowledge: the preface and an empty SETTINGS frame.
		{"HTTP/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"},
		// HTTP/1.1 keep-alive after one request.
		{"HTTP/1.1", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			_, err = io.WriteString(c, tc.hello)
			require.NoError(t, err)
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "the idle connection was still open after 10 s")
			t.Logf("%s: closed %v after going idle (idle_timeout 300ms)", tc.name, time.Since(start).Round(10*time.Millisecond))
		})
	}
}

// TestConnGuardTotal: beyond the total, every client is refused at
// accept, and a closed connection frees its place.
func TestConnGuardTotal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := newConnGuard(2, 3)
	gl := g.wrap(ln)
	defer gl.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for _, src := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		c, err := dialFrom(src, ln.Addr().String())
		if errors.Is(err, syscall.ECONNRESET) {
			continue
		}
		require.NoError(t, err)
		defer c.Close()
		clients = append(clients, c)
	}
	open := 0
	for _, c := range clients {
		if stillOpen(c) {
			open++
		}
	}
	assert.Equal(t, 3, open, "2 from .2 (its share), 1 from .3, none from .4 (the total)")
	assert.Equal(t, 3, g.Open())
	assert.Equal(t, 1, g.closeFrom(netip.MustParseAddr("127.0.0.3")), "closeFrom ends that client's connection")
	assert.Equal(t, 2, g.Open())
	c, err := dialFrom("127.0.0.4", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	assert.True(t, stillOpen(c), "the freed place is taken")
}

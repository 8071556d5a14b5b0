package tunnel_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/proxy"

	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

// readSome reads n bytes from r, then keeps reading in the background
// until it fails, so the proxy never waits on the application, and counts
// what it reads in got. The returned channel is closed when reading ends.
func readSome(t *testing.T, c net.Conn, r io.Reader, n int64, got *atomic.Int64) <-chan struct{} {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.CopyN(io.Discard, r, n)
	require.NoError(t, err, "the download runs")
	_ = c.SetReadDeadline(time.Time{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return ended
}

// quietFor is how long a revoked download must deliver nothing before
// the test takes it for drained: the proxy has passed on what the
// tunnel held and now waits on the tunnel side, where the hang was. A
// download still draining ends at Down on its write to the application
// instead, which would hide the hang.
const quietFor = 300 * time.Millisecond

// waitQuiet waits until got stops growing for quietFor.
func waitQuiet(t *testing.T, got *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, since := got.Load(), time.Now()
	for time.Since(since) < quietFor {
		require.True(t, time.Now().Before(deadline), "the revoked download never stopped")
		time.Sleep(10 * time.Millisecond)
		if n := got.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// proxyGoroutines lists the stacks of goroutines still running proxy or
// DNS-forwarder code.
func proxyGoroutines() []string {
	buf := make([]byte, 4<<20)
	var left []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "tunnel.(*proxyServer)") || strings.Contains(g, "tunnel.(*Userspace).serveDNS") {
			left = append(left, g)
		}
	}
	return left
}

// TestUserspaceDownCutsStuckProxyConns: the peer vanishes (the gateway
// revokes it) while an application holds a connection through a proxy
// or a query through the DNS forwarder. Nothing will ever arrive from the
// tunnel again, yet Down must return within downTimeout, without giving
// up on anything, and leave no proxy goroutine behind. It used to wait
// forever on a copy blocked reading the tunnel side, which made `tether
// tunnel up` impossible to stop.
func TestUserspaceDownCutsStuckProxyConns(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stick opens the stuck connection; it returns a channel closed
		// once the application's side has ended.
		stick func(t *testing.T, p *tunneltest.Pair, direct string, queries <-chan string, got *atomic.Int64) <-chan struct{}
	}{
		{"SOCKS5 download through the tunnel", func(t *testing.T, p *tunneltest.Pair, _ string, _ <-chan string, got *atomic.Int64) <-chan struct{} {
			c := socksDial(t, p, "10.99.0.1:9000")
			return readSome(t, c, c, 1<<20, got)
		}},
		{"HTTP CONNECT download through the tunnel", func(t *testing.T, p *tunneltest.Pair, _ string, _ <-chan string, got *atomic.Int64) <-chan struct{} {
			c, err := net.Dial("tcp", p.Client.HTTPAddr().String())
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			fmt.Fprintf(c, "CONNECT 10.99.0.1:9000 HTTP/1.1\r\nHost: 10.99.0.1:9000\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			return readSome(t, c, br, 1<<20, got)
		}},
		{"plain HTTP download through the tunnel", func(t *testing.T, p *tunneltest.Pair, _ string, _ <-chan string, got *atomic.Int64) <-chan struct{} {
			c, err := net.Dial("tcp", p.Client.HTTPAddr().String())
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			fmt.Fprintf(c, "GET http://10.99.0.1/endless HTTP/1.1\r\nHost: 10.99.0.1\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			return readSome(t, c, resp.Body, 1<<20, got)
		}},
		{"SOCKS5 to a silent host outside the tunnel", func(t *testing.T, p *tunneltest.Pair, direct string, _ <-chan string, _ *atomic.Int64) <-chan struct{} {
			c := socksDial(t, p, direct)
			ended := make(chan struct{})
			go func() { defer close(ended); _, _ = io.Copy(io.Discard, c) }()
			return ended
		}},
		{"SOCKS5 name the tunnel's DNS never answers", func(t *testing.T, p *tunneltest.Pair, _ string, queries <-chan string, _ *atomic.Int64) <-chan struct{} {
			d, err := proxy.SOCKS5("tcp", p.Client.SOCKSAddr().String(), nil, proxy.Direct)
			require.NoError(t, err)
			ended := make(chan struct{})
			go func() {
				defer close(ended)
				if c, err := d.Dial("tcp", "stuck.corp.example:80"); err == nil {
					c.Close()
				}
			}()
			waitQuery(t, queries, "stuck.corp.example")
			return ended
		}},
		{"DNS forwarder query the tunnel never answers", func(t *testing.T, p *tunneltest.Pair, _ string, queries <-chan string, _ *atomic.Int64) <-chan struct{} {
			c, err := net.Dial("udp", p.Client.DNSAddr().String())
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			// A query for stuck.corp.example, type A, as dig sends it.
			q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
				5, 's', 't', 'u', 'c', 'k', 4, 'c', 'o', 'r', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}
			_, err = c.Write(q)
			require.NoError(t, err)
			waitQuery(t, queries, "stuck.corp.example")
			ended := make(chan struct{})
			close(ended) // UDP: nothing on the application's side to end
			return ended
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tunneltest.NewPair(t, tunneltest.PairOptions{Client: tunnel.UserspaceOptions{SOCKSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DNSListen: "127.0.0.1:0"}})
			queries := stuckCompany(t, p)
			silent, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { silent.Close() })
			// It never answers, and holds the connection after the
			// client's FIN, as many servers do.
			held := make(chan struct{})
			t.Cleanup(func() { close(held) })
			go tunnel.ServeConns(silent, func(c net.Conn) { _, _ = io.Copy(io.Discard, c); <-held })

			var got atomic.Int64
			ended := tc.stick(t, p, silent.Addr().String(), queries, &got)
			require.NoError(t, p.Gateway.RemovePeer(p.Gateway.ClientKey.Public()), "the gateway revokes the client")
			waitQuiet(t, &got)

			done := make(chan error, 1)
			go func() { done <- p.Client.Down(context.Background()) }()
			select {
			case err := <-done:
				require.NoError(t, err, "Down gave up on something")
			case <-time.After(tunnel.DownTimeout + time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("Down did not return within %v:\n%s", tunnel.DownTimeout, buf[:runtime.Stack(buf, true)])
			}
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the application's connection is still open after Down")
			}
			// A dial Down stopped waiting for may still be unwinding.
			deadline := time.Now().Add(5 * time.Second)
			for len(proxyGoroutines()) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			require.Empty(t, proxyGoroutines(), "proxy goroutines outlived Down")
		})
	}
}

// stuckCompany serves the gateway's side: an endless download on
// 10.99.0.1:9000 and http://10.99.0.1/endless, and a DNS server on
// 10.99.0.1:53 that never answers and sends each query's raw bytes on
// the returned channel.
func stuckCompany(t *testing.T, p *tunneltest.Pair) <-chan string {
	t.Helper()
	gnet := p.Gateway.Net()
	ln, err := gnet.ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 9000))
	require.NoError(t, err)
	tunneltest.ServeEndless(t, ln)
	web, err := gnet.ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 80))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(web) }()
	t.Cleanup(func() { srv.Close() })
	pc, err := gnet.ListenUDPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 53))
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	queries := make(chan string, 64)
	go func() {
		buf := make([]byte, tunnel.MaxDNSMessage)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			select {
			case queries <- string(buf[:n]):
			default:
			}
		}
	}()
	return queries
}

// waitQuery waits until the gateway's DNS server has received a query
// for name.
func waitQuery(t *testing.T, queries <-chan string, name string) {
	t.Helper()
	var wire strings.Builder
	for _, l := range strings.Split(name, ".") {
		wire.WriteByte(byte(len(l)))
		wire.WriteString(l)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case q := <-queries:
			if strings.Contains(q, wire.String()) {
				return
			}
		case <-timeout:
			t.Fatalf("the gateway's DNS server never received a query for %s", name)
		}
	}
}

// socksDial connects to target through the client's SOCKS5 proxy.
func socksDial(t *testing.T, p *tunneltest.Pair, target string) net.Conn {
	t.Helper()
	d, err := proxy.SOCKS5("tcp", p.Client.SOCKSAddr().String(), nil, proxy.Direct)
	require.NoError(t, err)
	c, err := d.(proxy.ContextDialer).DialContext(t.Context(), "tcp", target)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

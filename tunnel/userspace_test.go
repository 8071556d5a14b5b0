package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/proxy"

	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

// downWithin takes u down, failing with every goroutine's stack if that
// takes over 10 s.
func downWithin(t *testing.T, u *tunnel.Userspace, while string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- u.Down(context.Background()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("Down hung %s:\n%s", while, buf[:runtime.Stack(buf, true)])
	}
}

func TestUserspacePairPingAndTCPBothWays(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		p := tunneltest.NewPair(t, tunneltest.PairOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		// Ping both ways. The first waits for the handshake, and a single
		// echo is never retransmitted: on a loaded CI machine under -race
		// one was lost in 1 of many runs, so ping again as a monitor does.
		var rtt time.Duration
		var err error
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			rtt, err = p.Client.Ping(pctx, tunneltest.GatewayAddr)
			pcancel()
			if err == nil {
				break
			}
		}
		require.NoError(t, err, "client → gateway ping")
		t.Logf("client → gateway ping %v", rtt)
		_, err = p.Gateway.Ping(ctx, tunneltest.ClientAddr)
		require.NoError(t, err, "gateway → client ping")

		// TCP both ways.
		gln, err := p.Gateway.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 7))
		require.NoError(t, err)
		defer gln.Close()
		go tunnel.EchoServer(gln)
		c, err := p.Client.Net().DialContextTCPAddrPort(ctx, netip.AddrPortFrom(tunneltest.GatewayAddr, 7))
		require.NoError(t, err)
		tunnel.RoundTrip(t, c, "client to gateway")
		c.Close()

		cln, err := p.Client.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.ClientAddr, 7))
		require.NoError(t, err)
		defer cln.Close()
		go tunnel.EchoServer(cln)
		c, err = p.Gateway.Net().DialContextTCPAddrPort(ctx, netip.AddrPortFrom(tunneltest.ClientAddr, 7))
		require.NoError(t, err)
		tunnel.RoundTrip(t, c, "gateway to client")
		c.Close()

		require.Eventually(t, func() bool { return p.Client.Status().Health == tunnel.HealthUp }, 5*time.Second, 50*time.Millisecond)
		st := p.Client.Status()
		assert.Equal(t, "userspace", st.Engine)
		assert.False(t, st.LastHandshake.IsZero())
		assert.Positive(t, st.RxBytes)
		assert.Positive(t, st.TxBytes)
		assert.Equal(t, fmt.Sprintf("127.0.0.1:%d", p.Gateway.ListenPort()), st.Endpoint)
		assert.Zero(t, st.HandshakeAttempts, "the response resets the attempt count")
		require.NoError(t, p.Client.Down(context.Background()))
		require.NoError(t, p.Client.Down(context.Background()), "Down is idempotent")
		assert.Equal(t, tunnel.HealthDown, p.Client.Status().Health)
		require.NoError(t, p.Gateway.Down(context.Background()))
	}()
	// No goroutine outlives Down. (A plain loop: testify's Eventually runs
	// its condition on goroutines of its own.)
	assertNoGoroutineLeak(t, before)
}

func assertNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after Down:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestUserspaceProxiesAndDNS(t *testing.T) {
	p := tunneltest.NewPair(t, tunneltest.PairOptions{Client: tunnel.UserspaceOptions{SOCKSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DNSListen: "127.0.0.1:0"}})
	gnet := p.Gateway.Net()

	// The company side: a web server and a DNS server inside the gateway's
	// netstack, reachable only through the tunnel.
	ln, err := gnet.ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 80))
	require.NoError(t, err)
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "intranet saw %s", r.RemoteAddr)
	})}
	go func() { _ = web.Serve(ln) }()
	defer web.Close()
	pc, err := gnet.ListenUDPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 53))
	require.NoError(t, err)
	dsrv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name == "intranet.corp.example." {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: tunneltest.GatewayAddr.AsSlice()})
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = dsrv.ActivateAndServe() }()
	defer dsrv.Shutdown()

	// DNS through the loopback forwarder.
	var ans *dns.Msg
	require.Eventually(t, func() bool {
		q := new(dns.Msg)
		q.SetQuestion("intranet.corp.example.", dns.TypeA)
		ans, _, err = (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, p.Client.DNSAddr().String())
		return err == nil
	}, 10*time.Second, 100*time.Millisecond, "DNS through the forwarder: %v", err)
	require.Len(t, ans.Answer, 1)
	assert.Equal(t, tunneltest.GatewayAddr.String(), ans.Answer[0].(*dns.A).A.String())

	// SOCKS5 with a name: resolved through the tunnel's DNS (socks5h).
	d, err := proxy.SOCKS5("tcp", p.Client.SOCKSAddr().String(), nil, proxy.Direct)
	require.NoError(t, err)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Dial: d.Dial}}
	body := get(t, hc, "http://intranet.corp.example/")
	assert.Equal(t, "intranet saw 10.99.0.2", body[:len("intranet saw 10.99.0.2")])

	// HTTP proxy: a plain request in absolute form, and CONNECT.
	pu, _ := url.Parse("http://" + p.Client.HTTPAddr().String())
	hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	assert.Contains(t, get(t, hc, "http://10.99.0.1/"), "intranet saw 10.99.0.2")
	c, err := net.Dial("tcp", p.Client.HTTPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintf(c, "CONNECT 10.99.0.1:80 HTTP/1.1\r\nHost: 10.99.0.1:80\r\n\r\n")
	buf := make([]byte, 4096)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Contains(t, string(buf[:n]), "200 Connection established")
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: intranet\r\n\r\n")
	all, _ := io.ReadAll(c)
	assert.Contains(t, string(all), "intranet saw 10.99.0.2")

	// Split mode: a destination outside the plan goes direct, not through
	// the tunnel: a loopback listener on the host answers.
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hostLn.Close()
	go tunnel.EchoServer(hostLn)
	sc, err := d.Dial("tcp", hostLn.Addr().String())
	require.NoError(t, err)
	tunnel.RoundTrip(t, sc, "direct")
	sc.Close()

	// A refused port gets SOCKS reply 5, which x/net reports.
	_, err = d.Dial("tcp", "10.99.0.1:81")
	require.Error(t, err)
}

func get(t *testing.T, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s", b)
	return string(b)
}

func TestUserspaceRejectsNonLoopbackProxy(t *testing.T) {
	k, _ := tunnel.GeneratePrivateKey()
	_, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: tunnel.Options{Config: &tunnel.Config{Interface: tunnel.Interface{PrivateKey: k, Addresses: tunnel.Pfx("10.0.0.2/32")}}}, SOCKSListen: "0.0.0.0:1080"})
	require.ErrorContains(t, err, "not loopback")
}

// TestUserspaceRemovePeerCutsAtOnce: a gateway that removes a peer from
// its live device stops answering it with the next packet, and adding it
// back restores it, with no restart.
func TestUserspaceRemovePeerCutsAtOnce(t *testing.T) {
	p := tunneltest.NewPair(t, tunneltest.PairOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.Client.Ping(ctx, tunneltest.GatewayAddr)
	require.NoError(t, err)
	ck := p.Gateway.ClientKey.Public()
	stats, err := p.Gateway.PeerStats()
	require.NoError(t, err)
	require.Len(t, stats, 1)
	assert.Equal(t, ck, stats[0].PublicKey)
	assert.False(t, stats[0].LastHandshake.IsZero())
	assert.Positive(t, stats[0].RxBytes)

	require.NoError(t, p.Gateway.RemovePeer(ck))
	stats, err = p.Gateway.PeerStats()
	require.NoError(t, err)
	assert.Empty(t, stats)
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = p.Client.Ping(pctx, tunneltest.GatewayAddr)
	pcancel()
	require.Error(t, err, "the removed peer's next packet gets nothing")

	psk := p.Gateway.PresharedKey
	require.NoError(t, p.Gateway.SetPeer(ctx, tunnel.Peer{PublicKey: ck, PresharedKey: psk, AllowedIPs: tunnel.Pfx("10.99.0.2/32")}))
	require.Eventually(t, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		_, err := p.Client.Ping(pctx, tunneltest.GatewayAddr)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "re-admitted: the client's next handshake succeeds")
}

// TestUserspaceDownWhileProbing: Down used to hold the engine's lock while
// waiting for the health monitor, whose ping took the same lock, so a
// Down during a probe hung forever. Probing every millisecond makes that
// overlap near certain.
func TestUserspaceDownWhileProbing(t *testing.T) {
	for i := range 20 {
		p := tunneltest.NewPair(t, tunneltest.PairOptions{Client: tunnel.UserspaceOptions{Options: tunnel.Options{ProbeInterval: time.Millisecond}}})
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		downWithin(t, p.Client, "while the monitor probed")
	}
}

// TestUserspaceDownMidTransfer closes each end while the other's netstack
// is sending at full rate. wireguard-go's netstack sends outbound packets
// on a channel that its Close closes unsynchronized, which the race
// detector flagged (and which can panic) when a gateway shut down during
// a speed test; netstackDevice is the fix.
func TestUserspaceDownMidTransfer(t *testing.T) {
	for i := range 4 {
		p := tunneltest.NewPair(t, tunneltest.PairOptions{})
		ln, err := p.Gateway.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 9000))
		require.NoError(t, err)
		tunneltest.ServeEndless(t, ln)
		// Several flows each way, so that at Close the gateway's stack
		// has segments queued on many endpoints: aborting them sends
		// resets from its own goroutines while the device closes.
		var got atomic.Int64
		var conns []net.Conn
		for range 4 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := p.Client.DialContext(ctx, "tcp", netip.AddrPortFrom(tunneltest.GatewayAddr, 9000).String())
			cancel()
			require.NoError(t, err)
			conns = append(conns, c)
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					got.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
		require.Eventually(t, func() bool { return got.Load() > 4<<20 }, 10*time.Second, time.Millisecond, "the transfers run")
		closing := p.Gateway.Userspace
		if i%2 == 1 {
			closing = p.Client
		}
		downWithin(t, closing, "mid-transfer")
		for _, c := range conns {
			_ = c.Close()
		}
		_ = ln.Close()
	}
}

// TestUserspaceAbortResets: a TCP connection dialed through the tunnel
// can be reset. A graceful close still sends everything written; Abort
// drops what is unsent and the peer sees a reset, as SO_LINGER 0 does on
// a kernel socket, so a measurement's finished load stops at once.
func TestUserspaceAbortResets(t *testing.T) {
	p := tunneltest.NewPair(t, tunneltest.PairOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ln, err := p.Gateway.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 9))
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	c, err := p.Client.DialContext(ctx, "tcp", netip.AddrPortFrom(tunneltest.GatewayAddr, 9).String())
	require.NoError(t, err)
	ab, ok := c.(interface{ Abort() })
	require.True(t, ok, "a tunnel TCP connection can abort: %T", c)
	var srv net.Conn
	select {
	case srv = <-accepted:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	defer srv.Close()

	// The peer reads nothing yet: the windows and the send buffer fill.
	const total = 32 << 20
	wrote := make(chan int64, 1)
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.Copy(c, io.LimitReader(zeroReader{}, total))
		wrote <- n
	}()
	n := <-wrote
	ab.Abort()
	got, err := io.Copy(io.Discard, srv)
	t.Logf("wrote %d bytes before aborting; the peer read %d, then %v", n, got, err)
	require.Error(t, err, "a reset, not an orderly end of stream")
	assert.Less(t, got, int64(total), "the unsent bytes were dropped")
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

package tunnel_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

// tcpGoodput sends n bytes over a fresh connection from dial to a sink
// accepted on ln, and returns bits per second measured at the receiver.
func tcpGoodput(tb testing.TB, ln net.Listener, dial func() (net.Conn, error), n int64) float64 {
	tb.Helper()
	done := make(chan float64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		defer c.Close()
		start := time.Now()
		got, _ := io.Copy(io.Discard, c)
		done <- float64(got*8) / time.Since(start).Seconds()
	}()
	c, err := dial()
	require.NoError(tb, err)
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < n; {
		m, err := c.Write(buf[:min(int64(len(buf)), n-sent)])
		require.NoError(tb, err)
		sent += int64(m)
	}
	c.Close()
	return <-done
}

// BenchmarkUserspacePairTCP moves TCP through two userspace peers on
// loopback and compares it with plain loopback TCP in the same run. It
// reports both rates and the ratio.
func BenchmarkUserspacePairTCP(b *testing.B) {
	const size = 256 << 20
	p := tunneltest.NewPair(b, tunneltest.PairOptions{})
	ln, err := p.Gateway.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 5201))
	require.NoError(b, err)
	defer ln.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer raw.Close()
	ctx := context.Background()
	var tunBps, rawBps float64
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		tunBps += tcpGoodput(b, ln, func() (net.Conn, error) {
			return p.Client.Net().DialContextTCPAddrPort(ctx, netip.AddrPortFrom(tunneltest.GatewayAddr, 5201))
		}, size)
		rawBps += tcpGoodput(b, raw, func() (net.Conn, error) { return net.Dial("tcp", raw.Addr().String()) }, size)
	}
	b.ReportMetric(tunBps/float64(b.N)/1e9, "tunnel-Gbit/s")
	b.ReportMetric(rawBps/float64(b.N)/1e9, "loopback-Gbit/s")
	b.ReportMetric(tunBps/rawBps, "ratio")
}

// BenchmarkForwardTCP measures the userspace subnet router: TCP from a
// client's netstack through the tunnel to the gateway's netstack, relayed
// to a host socket on loopback. The baseline in the same run is the same
// tunnel ending at a listener inside the gateway's netstack, so the ratio
// is what forwarding costs on top of the tunnel.
func BenchmarkForwardTCP(b *testing.B) {
	const size = 128 << 20
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer sink.Close()
	gwo := tunnel.UserspaceOptions{Forward: &tunnel.Forward{Allow: tunnel.Pfx("192.0.2.0/24"),
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, sink.Addr().String())
		}}}
	p := tunneltest.NewPair(b, tunneltest.PairOptions{Gateway: gwo, Routes: tunnel.Pfx("192.0.2.0/24")})
	inside, err := p.Gateway.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 5201))
	require.NoError(b, err)
	defer inside.Close()
	ctx := context.Background()
	var fwdBps, tunBps float64
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		fwdBps += tcpGoodput(b, sink, func() (net.Conn, error) {
			return p.Client.Net().DialContextTCPAddrPort(ctx, netip.MustParseAddrPort("192.0.2.10:5201"))
		}, size)
		tunBps += tcpGoodput(b, inside, func() (net.Conn, error) {
			return p.Client.Net().DialContextTCPAddrPort(ctx, netip.AddrPortFrom(tunneltest.GatewayAddr, 5201))
		}, size)
	}
	b.ReportMetric(fwdBps/float64(b.N)/1e9, "forwarded-Gbit/s")
	b.ReportMetric(tunBps/float64(b.N)/1e9, "tunnel-Gbit/s")
	b.ReportMetric(fwdBps/tunBps, "ratio")
}

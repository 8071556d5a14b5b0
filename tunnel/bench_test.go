package tunnel

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	p := newPair(b, ModeSplit, UserspaceOptions{})
	ln, err := p.gw.Net().ListenTCPAddrPort(netip.AddrPortFrom(gwTunnelAddr, 5201))
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
			return p.client.Net().DialContextTCPAddrPort(ctx, netip.AddrPortFrom(gwTunnelAddr, 5201))
		}, size)
		rawBps += tcpGoodput(b, raw, func() (net.Conn, error) { return net.Dial("tcp", raw.Addr().String()) }, size)
	}
	b.ReportMetric(tunBps/float64(b.N)/1e9, "tunnel-Gbit/s")
	b.ReportMetric(rawBps/float64(b.N)/1e9, "loopback-Gbit/s")
	b.ReportMetric(tunBps/rawBps, "ratio")
}

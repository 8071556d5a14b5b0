package netlab

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer answers every UDP datagram on loopback with itself.
func echoServer(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go EchoUDP(pc)
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func startRelay(t testing.TB, target netip.AddrPort, im Impairment, seed uint64) *Relay {
	t.Helper()
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	r, err := NewRelay(front, RelayConfig{Target: target, Impairment: im, Seed: seed})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func relayAddr(r *Relay) netip.AddrPort { return r.Addr().(*net.UDPAddr).AddrPort() }

func TestRelayPassesCleanTraffic(t *testing.T) {
	r := startRelay(t, echoServer(t), Impairment{}, 1)
	res, err := ProbeUDPEcho(context.Background(), loopbackDial, relayAddr(r), 50, time.Millisecond, time.Second)
	require.NoError(t, err)
	assert.Zero(t, res.Lost)
	assert.Less(t, res.Median(), 20*time.Millisecond)
	st := r.Stats()
	assert.EqualValues(t, 50, st.ToTarget.Delivered)
	assert.EqualValues(t, 50, st.FromTarget.Delivered)
	assert.EqualValues(t, 1, st.Sessions, "one client, one session")
}

func TestRelayDelayAndJitter(t *testing.T) {
	im := Impairment{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}
	r := startRelay(t, echoServer(t), im, 2)
	res, err := ProbeUDPEcho(context.Background(), loopbackDial, relayAddr(r), 40, 5*time.Millisecond, time.Second)
	require.NoError(t, err)
	require.Zero(t, res.Lost)
	// Each direction adds 20±5 ms, so no round trip can be under 30 ms.
	assert.GreaterOrEqual(t, res.RTTs[0], 30*time.Millisecond, "fastest round trip")
	assert.InDelta(t, float64(40*time.Millisecond), float64(res.Median()), float64(15*time.Millisecond))
	spread := res.RTTs[len(res.RTTs)-1] - res.RTTs[0]
	assert.Greater(t, spread, 2*time.Millisecond, "jitter must spread the round trips")
}

func TestRelayLossIsSeededAndNearTheSetting(t *testing.T) {
	im := Impairment{Loss: 0.2}
	r := startRelay(t, echoServer(t), im, 42)
	res, err := ProbeUDPEcho(context.Background(), loopbackDial, relayAddr(r), 500, 200*time.Microsecond, 500*time.Millisecond)
	require.NoError(t, err)
	st := r.Stats()
	// The relay's own counters are exact; the probe's loss is what crosses
	// both directions: 1-(0.8*0.8) = 36%.
	assert.EqualValues(t, 500, st.ToTarget.In)
	assert.InDelta(t, 0.2, float64(st.ToTarget.Lost)/float64(st.ToTarget.In), 0.05)
	assert.InDelta(t, 36, float64(res.Lost)/float64(res.Sent)*100, 7)

	// The same seed drops the same packets.
	a, b := newPipe(im, 7), newPipe(im, 7)
	for range 1000 {
		a.send(nil, func([]byte) {})
		b.send(nil, func([]byte) {})
	}
	assert.Equal(t, a.lost.Load(), b.lost.Load())
	assert.NotZero(t, a.lost.Load())
}

func TestRelayRateLimit(t *testing.T) {
	// 1 Mbit/s: 100 packets of 1208 bytes on the wire take 966 ms.
	const n, size = 100, 1166
	rate := 1 * Mbps
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer sink.Close()
	r := startRelay(t, sink.LocalAddr().(*net.UDPAddr).AddrPort(), Impairment{Rate: rate}, 3)
	c, err := net.Dial("udp", r.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	got := make(chan time.Time, n)
	go func() {
		buf := make([]byte, 2048)
		for {
			_ = sink.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, _, err := sink.ReadFrom(buf); err != nil {
				close(got)
				return
			}
			got <- time.Now()
		}
	}()
	pkt := make([]byte, size)
	for range n {
		_, err := c.Write(pkt)
		require.NoError(t, err)
	}
	var first, last time.Time
	count := 0
	for ts := range got {
		if count == 0 {
			first = ts
		}
		last = ts
		count++
	}
	// The queue holds 200 ms, so about a fifth of a second's worth is
	// delivered and the rest is tail-dropped, as a router would.
	st := r.Stats()
	assert.EqualValues(t, count, st.ToTarget.Delivered)
	assert.Positive(t, st.ToTarget.Dropped, "a burst beyond the queue must be dropped")
	require.Greater(t, count, 10)
	bits := float64((count-1)*(size+8+20+14)) * 8
	measured := bits / last.Sub(first).Seconds()
	t.Logf("relay rate: set %v, delivered %d/%d packets at %.0f kbit/s", rate, count, n, measured/1000)
	assert.InDelta(t, float64(rate), measured, float64(rate)*0.15)
}

func TestRelayRejectsBadConfig(t *testing.T) {
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer front.Close()
	_, err = NewRelay(front, RelayConfig{Target: netip.MustParseAddrPort("127.0.0.1:9"), Impairment: Impairment{Loss: 1.5}})
	assert.ErrorContains(t, err, "loss")
	_, err = NewRelay(front, RelayConfig{})
	assert.ErrorContains(t, err, "target")
}

func TestRelayCloseWaitsForEverySession(t *testing.T) {
	front, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	r, err := NewRelay(front, RelayConfig{Target: echoServer(t), Impairment: Impairment{Delay: 50 * time.Millisecond}})
	require.NoError(t, err)
	for i := range 5 { // five clients, five sessions
		c, err := net.Dial("udp", r.Addr().String())
		require.NoError(t, err)
		_, _ = c.Write([]byte{byte(i)})
		c.Close()
	}
	require.Eventually(t, func() bool { return r.Stats().OpenSessions == 5 }, time.Second, 5*time.Millisecond)
	// Close returns only after every goroutine of the relay (pipes, front
	// reader, one reader per session) has returned.
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return: a relay goroutine is stuck")
	}
	assert.Zero(t, r.Stats().OpenSessions)
	_, err = front.WriteTo([]byte{1}, front.LocalAddr())
	assert.Error(t, err, "the front socket is closed with the relay")
}

func BenchmarkRelayThroughput(b *testing.B) {
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(b, err)
	defer sink.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := sink.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	r := startRelay(b, sink.LocalAddr().(*net.UDPAddr).AddrPort(), Impairment{}, 1)
	c, err := net.Dial("udp", r.Addr().String())
	require.NoError(b, err)
	defer c.Close()
	pkt := make([]byte, 1200)
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for range b.N {
		_, _ = c.Write(pkt)
	}
}

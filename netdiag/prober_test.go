package netdiag_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/netdiagtest"
	"github.com/tetherwfh/tether/netdiag/report"
)

// noICMP is a network that drops every echo, as many do.
func noICMP(context.Context, netip.Addr) (time.Duration, error) {
	return 0, errors.New("ICMP is blocked here")
}

// silentUDP is a UDP port where something listens and never answers.
func silentUDP(t *testing.T) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// TestProberFallsBackWithoutICMP: with ICMP unavailable, one probe is
// answered by the STAMP reflector, else by a TCP handshake (a refusal
// counts), and says which; with nothing answering it says why per method.
func TestProberFallsBackWithoutICMP(t *testing.T) {
	srv := netdiagtest.New(t, netdiagtest.Options{})
	lo := netip.MustParseAddr("127.0.0.1")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := uint16(closed.Addr().(*net.TCPAddr).Port)
	require.NoError(t, closed.Close())
	p := &netdiag.Prober{Ping: noICMP}
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		target netdiag.Target
		method string
	}{
		{"STAMP before TCP", netdiag.Target{Name: "gateway", Addr: lo, STAMPPort: srv.STAMP.Port(), TCPPort: srv.Addr.Port()}, report.MethodSTAMP},
		{"TCP without a reflector", netdiag.Target{Name: "gateway", Addr: lo, STAMPPort: silentUDP(t), TCPPort: srv.Addr.Port()}, report.MethodTCP},
		{"a refused handshake is an answer", netdiag.Target{Name: "anchor", Addr: lo, TCPPort: refused}, report.MethodTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.Probe(ctx, tc.target)
			require.NoError(t, err)
			assert.Equal(t, tc.method, s.Method)
			assert.Positive(t, s.RTT)
			assert.Less(t, s.RTT, netdiag.ProbeWait)
		})
	}

	start := time.Now()
	_, err = p.Probe(ctx, netdiag.Target{Name: "gateway", Addr: lo, STAMPPort: silentUDP(t)})
	require.Error(t, err)
	assert.ErrorContains(t, err, "no answer from gateway (127.0.0.1)")
	assert.ErrorContains(t, err, "icmp: no answer to 1 probes")
	assert.ErrorContains(t, err, "stamp: ")
	assert.Less(t, time.Since(start), netdiag.ProbeWait+time.Second, "bounded by ProbeWait")

	// A series: every probe answered by the reflector.
	lt := p.Measure(ctx, netdiag.Target{Name: "gateway", Addr: lo, STAMPPort: srv.STAMP.Port()},
		netdiag.Sampling{Count: 5, Interval: 10 * time.Millisecond, Wait: 500 * time.Millisecond})
	assert.Equal(t, report.MethodSTAMP, lt.Method, lt.Error)
	assert.Equal(t, 5, lt.Sent)
	assert.Equal(t, 5, lt.Samples)
	assert.Zero(t, lt.LossPct)
	assert.Equal(t, "127.0.0.1", lt.Addr)
	assert.Empty(t, lt.Error)
	assert.Positive(t, srv.Reflector.Stats().Reflected)
}

// TestProberDialsThroughItsNetwork: with Dial and no Ping there is no
// ICMP (the host's sockets would bypass the caller's network), and every
// connection goes through Dial.
func TestProberDialsThroughItsNetwork(t *testing.T) {
	srv := netdiagtest.New(t, netdiagtest.Options{})
	var dialed []string
	p := &netdiag.Prober{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, network+" "+addr)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	s, err := p.Probe(context.Background(), netdiag.Target{Name: "gateway", Addr: srv.STAMP.Addr(), STAMPPort: srv.STAMP.Port()})
	require.NoError(t, err)
	assert.Equal(t, report.MethodSTAMP, s.Method)
	assert.Equal(t, []string{"udp " + srv.STAMP.String()}, dialed)

	_, err = p.Probe(context.Background(), netdiag.Target{Name: "router", Addr: srv.STAMP.Addr()})
	assert.ErrorContains(t, err, "icmp: not available on this network (no Ping given)")
}

// TestProbeStopsWithItsContext: a cancelled probe returns at once.
func TestProbeStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := (&netdiag.Prober{Ping: noICMP}).Probe(ctx, netdiag.Target{Name: "gateway", Addr: netip.MustParseAddr("127.0.0.1"), STAMPPort: silentUDP(t)})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 500*time.Millisecond)
}

// TestProbeWithOneMethod: the method Probe chose, and only it: STAMP
// answers, TCP answers, a silent STAMP port is an error, not a fallback.
func TestProbeWithOneMethod(t *testing.T) {
	srv := netdiagtest.New(t, netdiagtest.Options{})
	lo := netip.MustParseAddr("127.0.0.1")
	p := &netdiag.Prober{Ping: noICMP}
	ctx := context.Background()
	gw := netdiag.Target{Name: "gateway", Addr: lo, STAMPPort: srv.STAMP.Port(), TCPPort: srv.Addr.Port()}
	for _, m := range []string{report.MethodSTAMP, report.MethodTCP} {
		rtt, err := p.ProbeWith(ctx, gw, m)
		require.NoError(t, err, m)
		assert.Positive(t, rtt, m)
	}
	silent := gw
	silent.STAMPPort = silentUDP(t)
	_, err := p.ProbeWith(ctx, silent, report.MethodSTAMP)
	assert.ErrorContains(t, err, "no stamp answer", "no fallback to TCP")
	_, err = p.ProbeWith(ctx, gw, "carrier-pigeon")
	assert.ErrorContains(t, err, "want icmp, stamp or tcp")
}

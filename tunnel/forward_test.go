package tunnel_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

// fwdHost stands in for the company network behind a subnet router: the
// gateway's dials to 192.0.2.10 land on loopback echo servers, and every
// destination asked for is recorded.
type fwdHost struct {
	tcp, udp string
	mu       sync.Mutex
	asked    []string
}

func newFwdHost(t *testing.T) *fwdHost {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go tunnel.EchoServer(ln)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go netlab.EchoUDP(pc)
	return &fwdHost{tcp: ln.Addr().String(), udp: pc.LocalAddr().String()}
}

func (h *fwdHost) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.asked = append(h.asked, network+" "+addr)
	h.mu.Unlock()
	ap := netip.MustParseAddrPort(addr)
	if ap.Addr() != netip.MustParseAddr("192.0.2.10") {
		return nil, syscall.ECONNREFUSED // a host that refuses
	}
	var d net.Dialer
	if network == "udp" {
		return d.DialContext(ctx, network, h.udp)
	}
	return d.DialContext(ctx, network, h.tcp)
}

func (h *fwdHost) destinations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.asked...)
}

func newForwardPair(t *testing.T, h *fwdHost) *tunneltest.Pair {
	gwo := tunnel.UserspaceOptions{Forward: &tunnel.Forward{
		Allow: tunnel.Pfx("192.0.2.0/24"),
		Deny:  tunnel.Pfx("10.99.0.0/24", "192.0.2.66/32"),
		Dial:  h.dial,
	}}
	// The client routes 198.51.100.0/24 to the gateway too, which must not
	// forward it: it is not in Allow.
	return tunneltest.NewPair(t, tunneltest.PairOptions{Gateway: gwo, Routes: tunnel.Pfx("192.0.2.0/24", "198.51.100.0/24")})
}

func TestForwardTCPAndUDP(t *testing.T) {
	h := newFwdHost(t)
	p := newForwardPair(t, h)
	tnet := p.Client.Net()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := tnet.DialContext(ctx, "tcp", "192.0.2.10:7")
	require.NoError(t, err)
	msg := []byte("through the subnet router")
	_, err = c.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, msg, got)
	c.Close()

	u, err := tnet.DialContext(ctx, "udp", "192.0.2.10:53")
	require.NoError(t, err)
	defer u.Close()
	// UDP may lose the first datagram while the flow is set up; retry.
	var n int
	buf := make([]byte, 64)
	for i := 0; i < 5; i++ {
		_, err = u.Write([]byte("ping"))
		require.NoError(t, err)
		_ = u.SetReadDeadline(time.Now().Add(time.Second))
		if n, err = u.Read(buf); err == nil {
			break
		}
	}
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf[:n]))

	// The gateway dialled the original destinations, not anything else.
	assert.Contains(t, h.destinations(), "tcp 192.0.2.10:7")
	assert.Contains(t, h.destinations(), "udp 192.0.2.10:53")
	st := p.Gateway.ForwardStats()
	assert.Equal(t, uint64(1), st.TCPAccepted)
	assert.Equal(t, uint64(1), st.UDPFlows)
}

func TestForwardRefuses(t *testing.T) {
	h := newFwdHost(t)
	p := newForwardPair(t, h)
	tnet := p.Client.Net()
	for _, dst := range []string{
		"198.51.100.1:80", // routed by the client, not allowed by the gateway
		"192.0.2.66:80",   // allowed prefix, denied host
		"10.99.0.9:80",    // another peer's address: peers never reach each other
		"10.99.0.1:9",     // the gateway's own address, a port nothing listens on
		"192.0.2.11:80",   // allowed, but the host refuses
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		start := time.Now()
		c, err := tnet.DialContext(ctx, "tcp", dst)
		cancel()
		if c != nil {
			c.Close()
		}
		require.Error(t, err, dst)
		// A reset, not a timeout: the client learns at once.
		assert.False(t, errors.Is(err, context.DeadlineExceeded), "%s: %v", dst, err)
		assert.Less(t, time.Since(start), 6*time.Second, dst)
	}
	assert.Equal(t, []string{"tcp 192.0.2.11:80"}, h.destinations(), "only the allowed destination reaches the host's dialer")
	st := p.Gateway.ForwardStats()
	assert.Equal(t, uint64(4), st.TCPRefused, "198.51.100.1, 192.0.2.66, 10.99.0.9 and 10.99.0.1:9 by policy")
	assert.Equal(t, uint64(1), st.TCPFailed)
	assert.Zero(t, st.TCPAccepted)
}

func TestForwardDownClosesFlows(t *testing.T) {
	h := newFwdHost(t)
	p := newForwardPair(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.Client.Net().DialContext(ctx, "tcp", "192.0.2.10:7")
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	one := make([]byte, 1)
	_, err = io.ReadFull(c, one)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.Gateway.ForwardStats().Active == 1 }, 5*time.Second, 10*time.Millisecond)

	done := make(chan struct{})
	go func() {
		_ = p.Gateway.Down(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Down did not return while a forwarded connection was open")
	}
	assert.Zero(t, p.Gateway.ForwardStats().Active)
}

func TestForwardPingIsNotAnsweredForOthers(t *testing.T) {
	p := newForwardPair(t, newFwdHost(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.Client.Ping(ctx, tunneltest.GatewayAddr)
	require.NoError(t, err, "the gateway's own address answers")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	_, err = p.Client.Ping(ctx2, netip.MustParseAddr("192.0.2.10"))
	// In promiscuous mode gVisor holds a temporary address for every
	// destination; it must not answer echo requests for them, or a peer
	// would take a dead company host for a live one.
	assert.Error(t, err, "a company host's echo must not be faked by the gateway's netstack")
}

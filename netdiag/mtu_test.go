package netdiag

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/netdiagtest"
)

// narrowPath is a reflector's socket behind a path whose MTU is mtu and
// which drops a share of packets at random: larger datagrams vanish, as
// they do past a DF-honouring router, and loss hits every size alike.
type narrowPath struct {
	net.PacketConn
	mtu  int
	mu   sync.Mutex
	rng  *rand.Rand
	loss float64
}

func (p *narrowPath) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := p.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		p.mu.Lock()
		lost := p.rng.Float64() < p.loss
		p.mu.Unlock()
		if n+ipUDPOverhead <= p.mtu && !lost {
			return n, addr, nil
		}
	}
}

func reflectorBehind(t *testing.T, mtu int, loss float64, seed uint64) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	_, addr := netdiagtest.ServeSTAMP(t, &narrowPath{PacketConn: pc, mtu: mtu, loss: loss, rng: rand.New(rand.NewPCG(seed, 1))})
	return addr.Port()
}

// TestMTUSearchFindsTheLimitDespiteLoss: random loss must not pass for a
// smaller MTU (the lab's lossy line once reported 1377 for 1500), and
// each figure must be exact.
func TestMTUSearchFindsTheLimitDespiteLoss(t *testing.T) {
	c, err := New(Config{Server: "http://127.0.0.1:1"})
	require.NoError(t, err)
	lo := netip.MustParseAddr("127.0.0.1")
	for _, loss := range []float64{0, 0.15} {
		for _, mtu := range []int{1500, 1400, 1377, 577} {
			for seed := range uint64(2) {
				t.Run(fmt.Sprintf("loss%.0f%%/mtu%d/seed%d", loss*100, mtu, seed), func(t *testing.T) {
					t.Parallel()
					port := reflectorBehind(t, mtu, loss, seed)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					start := time.Now()
					r := c.mtuSearch(ctx, lo, port)
					require.Empty(t, r.Error)
					assert.Equal(t, mtu, r.PathMTU)
					assert.Equal(t, mtu-wireGuardOverhead, r.TunnelMTU)
					t.Logf("%.2f s", time.Since(start).Seconds())
				})
			}
		}
	}
}

// TestMTUSearchSilentReflector: no echo at all is an error, never a
// figure.
func TestMTUSearchSilentReflector(t *testing.T) {
	c, err := New(Config{Server: "http://127.0.0.1:1"})
	require.NoError(t, err)
	port := reflectorBehind(t, 1500, 1, 0)
	r := c.mtuSearch(context.Background(), netip.MustParseAddr("127.0.0.1"), port)
	assert.Contains(t, r.Error, "did not echo")
	assert.Zero(t, r.PathMTU)
}

// TestMTUSearchStopsWhenTheContextEnds: a search cut short reports no
// figure, which would otherwise raise mtu_low on a guess.
func TestMTUSearchStopsWhenTheContextEnds(t *testing.T) {
	c, err := New(Config{Server: "http://127.0.0.1:1"})
	require.NoError(t, err)
	port := reflectorBehind(t, 1400, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := c.mtuSearch(ctx, netip.MustParseAddr("127.0.0.1"), port)
	assert.NotEmpty(t, r.Error)
	assert.Zero(t, r.PathMTU)
}

package udpguard

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var hostPrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.1/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("192.0.2.2/24"),
	netip.MustParsePrefix("10.99.0.1/24"),
	netip.MustParsePrefix("fd00::2/64"),
	netip.MustParsePrefix("fe80::1/64"),
}

const ownPort = 40001

func newGuard(t *testing.T, l Limits, c *clock) *Guard {
	t.Helper()
	g, err := New(Config{Limits: l, Ports: []uint16{862, ownPort}, Now: c.now,
		LocalAddrs: func() ([]netip.Prefix, error) { return hostPrefixes, nil }})
	require.NoError(t, err)
	return g
}

var roomy = Limits{PerSource: 1000, PerSourceBurst: 1000, Total: 1000, TotalBurst: 1000}

func TestRefuseSourcesThatCannotBeClients(t *testing.T) {
	g := newGuard(t, roomy, &clock{time.Unix(1000, 0)})
	for _, tc := range []struct {
		src, dst string // dst "" is unknown
		want     error
	}{
		{"198.51.100.7:40000", "192.0.2.2", nil},
		{"[2001:db8::7]:40000", "fd00::2", nil},
		{"198.51.100.7:1024", "192.0.2.2", nil},
		{"198.51.100.7:51820", "192.0.2.2", nil}, // inside Linux's ephemeral range
		{"198.51.100.7:40000", "", nil},
		{"127.0.0.1:40000", "127.0.0.1", nil}, // a local client
		{"[::1]:40000", "::1", nil},

		// The responder itself, and this host.
		{"127.0.0.1:40001", "127.0.0.1", ErrOwnPort},
		{"127.0.0.1:862", "127.0.0.1", ErrOwnPort},
		{"198.51.100.7:862", "192.0.2.2", ErrOwnPort},
		{"192.0.2.2:40000", "192.0.2.2", ErrOwnAddress},
		{"[::ffff:192.0.2.2]:40000", "192.0.2.2", ErrOwnAddress},
		{"10.99.0.1:40000", "192.0.2.2", ErrOwnAddress},
		{"[fd00::2]:40000", "fd00::2", ErrOwnAddress},
		{"[fe80::1%eth0]:40000", "fe80::1", ErrOwnAddress},
		{"127.0.0.1:40000", "192.0.2.2", ErrOwnAddress},
		{"127.0.0.1:40000", "", ErrOwnAddress}, // unknown destination: not loopback
		{"[::1]:40000", "fd00::2", ErrOwnAddress},
		{"192.0.2.2:40000", "127.0.0.1", ErrOwnAddress},

		// Servers: the other half of a loop.
		{"198.51.100.7:0", "192.0.2.2", ErrServicePort},
		{"198.51.100.7:7", "192.0.2.2", ErrServicePort},     // echo
		{"198.51.100.7:13", "192.0.2.2", ErrServicePort},    // daytime
		{"198.51.100.7:19", "192.0.2.2", ErrServicePort},    // chargen
		{"198.51.100.7:37", "192.0.2.2", ErrServicePort},    // time
		{"198.51.100.7:53", "192.0.2.2", ErrServicePort},    // DNS
		{"198.51.100.7:123", "192.0.2.2", ErrServicePort},   // NTP
		{"198.51.100.7:161", "192.0.2.2", ErrServicePort},   // SNMP
		{"198.51.100.7:1023", "192.0.2.2", ErrServicePort},  // any port below 1024
		{"198.51.100.7:1900", "192.0.2.2", ErrServicePort},  // SSDP
		{"198.51.100.7:11211", "192.0.2.2", ErrServicePort}, // memcached
		{"127.0.0.1:7", "127.0.0.1", ErrServicePort},

		// Addresses no client has.
		{"0.0.0.0:40000", "192.0.2.2", ErrUnspecified},
		{"0.1.2.3:40000", "192.0.2.2", ErrUnspecified},
		{"[::]:40000", "fd00::2", ErrUnspecified},
		{"224.0.0.1:40000", "192.0.2.2", ErrMulticast},
		{"[ff02::1]:40000", "fd00::2", ErrMulticast},
		{"255.255.255.255:40000", "192.0.2.2", ErrMulticast},
		{"240.0.0.1:40000", "192.0.2.2", ErrMulticast},
		{"192.0.2.255:40000", "192.0.2.2", ErrMulticast}, // the subnet's broadcast
		{"198.51.100.7:40000", "255.255.255.255", ErrMulticast},
		{"198.51.100.7:40000", "192.0.2.255", ErrMulticast},
		{"198.51.100.7:40000", "224.0.0.251", ErrMulticast},
		{"[2001:db8::7]:40000", "ff02::fb", ErrMulticast},
	} {
		t.Run(fmt.Sprintf("%s->%s", tc.src, tc.dst), func(t *testing.T) {
			var dst netip.Addr
			if tc.dst != "" {
				dst = netip.MustParseAddr(tc.dst)
			}
			err := g.Refuse(netip.MustParseAddrPort(tc.src), dst)
			if tc.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.want)
			}
		})
	}
	assert.Error(t, g.Refuse(netip.AddrPort{}, netip.Addr{}), "the invalid source")

	// A wildcard socket that cannot tell where a datagram arrived (no
	// control messages) listens on loopback too.
	wild, err := New(Config{Limits: roomy, Ports: []uint16{ownPort}, Listen: netip.IPv6Unspecified(),
		LocalAddrs: func() ([]netip.Prefix, error) { return hostPrefixes, nil }})
	require.NoError(t, err)
	assert.NoError(t, wild.Refuse(netip.MustParseAddrPort("127.0.0.1:40000"), netip.Addr{}))
	assert.ErrorIs(t, wild.Refuse(netip.MustParseAddrPort("127.0.0.1:40001"), netip.Addr{}), ErrOwnPort)
	assert.ErrorIs(t, wild.Refuse(netip.MustParseAddrPort("192.0.2.2:40000"), netip.Addr{}), ErrOwnAddress)
	assert.ErrorIs(t, wild.Refuse(netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddr("192.0.2.2")), ErrOwnAddress)
}

func allowed(g *Guard, src string) int {
	n := 0
	for g.Check(netip.MustParseAddrPort(src), netip.MustParseAddr("192.0.2.2")) == nil {
		n++
	}
	return n
}

func TestRateLimitPerSourceNetworkAndInTotal(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	g := newGuard(t, Limits{PerSource: 1, PerSourceBurst: 3, Total: 100, TotalBurst: 8}, c)
	// Refused sources spend nothing.
	for range 50 {
		require.ErrorIs(t, g.Check(netip.MustParseAddrPort("198.51.100.7:7"), netip.MustParseAddr("192.0.2.2")), ErrServicePort)
	}
	assert.Equal(t, 3, allowed(g, "198.51.100.7:40000"), "one source: its burst")
	assert.ErrorIs(t, g.Check(netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddr("192.0.2.2")), ErrRateLimited)
	assert.Equal(t, 3, allowed(g, "[2001:db8:1:2::1]:40000"), "another source is still answered")
	assert.Zero(t, allowed(g, "[2001:db8:1:2::ffff]:40000"), "an address of the same /64 shares its limit")
	assert.Equal(t, 2, allowed(g, "198.51.100.8:40000"), "the total burst (8) caps them all")
	c.t = c.t.Add(time.Second)
	assert.Equal(t, 1, allowed(g, "198.51.100.7:40000"), "one second at 1/s")
}

func TestLocalAddressesAreRereadAndSurviveAFailedRead(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	prefixes := []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}
	var fail error
	g, err := New(Config{Limits: roomy, Now: c.now, LocalAddrs: func() ([]netip.Prefix, error) { return prefixes, fail }})
	require.NoError(t, err)
	added := netip.MustParseAddrPort("203.0.113.5:40000")
	require.NoError(t, g.Refuse(added, netip.Addr{}))
	prefixes = append(prefixes, netip.MustParsePrefix("203.0.113.5/24"))
	require.NoError(t, g.Refuse(added, netip.Addr{}), "cached for LocalRefresh")
	c.t = c.t.Add(LocalRefresh)
	assert.ErrorIs(t, g.Refuse(added, netip.Addr{}), ErrOwnAddress, "an address added since is seen")
	fail = errors.New("netlink: no")
	c.t = c.t.Add(LocalRefresh)
	assert.ErrorIs(t, g.Refuse(added, netip.Addr{}), ErrOwnAddress, "a failed read keeps the last good set")
	assert.ErrorIs(t, g.LocalErr(), fail)
}

func TestInterfaceAddressesIncludeLoopback(t *testing.T) {
	got, err := interfacePrefixes()
	require.NoError(t, err)
	assert.Contains(t, got, netip.MustParsePrefix("127.0.0.1/8"))
}

func TestNewRejectsLimitsThatAllowNothingOrEverything(t *testing.T) {
	for _, l := range []Limits{{}, {PerSource: 1, PerSourceBurst: 1, Total: 1}, {PerSource: -1, PerSourceBurst: 1, Total: 1, TotalBurst: 1}} {
		_, err := New(Config{Limits: l})
		assert.Error(t, err, "%+v", l)
	}
}

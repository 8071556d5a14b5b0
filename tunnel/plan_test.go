package tunnel

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestPlanTable(t *testing.T) {
	gw := addrs("198.18.2.2")
	for _, tc := range []struct {
		name   string
		policy Policy
		in     []string // must route through the tunnel
		out    []string // must not
		routes []netip.Prefix
		nroute int // when routes is nil: the exact count of the minimal set
	}{
		{
			name:   "full: everything but the endpoint",
			policy: Policy{Mode: ModeFull, Endpoints: gw},
			in:     []string{"1.1.1.1", "198.18.2.1", "198.18.2.3", "10.77.0.10", "2001:db8::1", "192.168.77.1"},
			out:    []string{"198.18.2.2"},
			// 0/0 minus one /32 is 32 prefixes (one per bit), plus ::/0.
			nroute: 33,
		},
		{
			name:   "full with LAN allowed",
			policy: Policy{Mode: ModeFull, Endpoints: gw, LAN: pfx("192.168.77.0/24"), AllowLAN: true},
			in:     []string{"192.168.78.1", "8.8.8.8"},
			out:    []string{"192.168.77.1", "192.168.77.254", "198.18.2.2"},
		},
		{
			name:   "full with LAN blocked keeps the LAN in the tunnel",
			policy: Policy{Mode: ModeFull, Endpoints: gw, LAN: pfx("192.168.77.0/24"), AllowLAN: false},
			in:     []string{"192.168.77.1"},
			out:    []string{"198.18.2.2"},
		},
		{
			name:   "full with an IPv6 endpoint",
			policy: Policy{Mode: ModeFull, Endpoints: addrs("2001:db8::5")},
			in:     []string{"2001:db8::4", "0.0.0.1", "255.255.255.255"},
			out:    []string{"2001:db8::5"},
			nroute: 1 + 128,
		},
		{
			name:   "split: company prefixes and DNS only",
			policy: Policy{Mode: ModeSplit, Endpoints: gw, CompanyPrefixes: pfx("10.77.0.0/16"), CompanyDNS: addrs("10.99.0.1")},
			in:     []string{"10.77.0.10", "10.77.255.255", "10.99.0.1"},
			out:    []string{"1.1.1.1", "10.78.0.1", "10.99.0.2", "198.18.2.2"},
			routes: pfx("10.77.0.0/16", "10.99.0.1/32"),
		},
		{
			name:   "split merges adjacent and covered prefixes",
			policy: Policy{Mode: ModeSplit, CompanyPrefixes: pfx("10.0.0.0/25", "10.0.0.128/25", "10.0.0.7/32", "10.0.1.5/24")},
			routes: pfx("10.0.0.0/23"),
		},
		{
			name:   "exclusions carve minimal sets",
			policy: Policy{Mode: ModeSplit, CompanyPrefixes: pfx("10.0.0.0/8"), Exclude: pfx("10.128.0.0/9", "10.64.0.0/10")},
			routes: pfx("10.0.0.0/10"),
		},
		{
			name:   "an exclusion never takes the company DNS out",
			policy: Policy{Mode: ModeFull, Endpoints: gw, CompanyDNS: addrs("10.99.0.1"), Exclude: pfx("10.0.0.0/8")},
			in:     []string{"10.99.0.1"},
			out:    []string{"10.99.0.2", "10.0.0.1"},
		},
		{
			name:   "the endpoint never routes through, even inside company prefixes",
			policy: Policy{Mode: ModeSplit, Endpoints: addrs("10.77.0.1"), CompanyPrefixes: pfx("10.77.0.0/24")},
			in:     []string{"10.77.0.2"},
			out:    []string{"10.77.0.1"},
			nroute: 8,
		},
		{
			name:   "config mode follows AllowedIPs",
			policy: Policy{Mode: ModeConfig, ConfigRoutes: pfx("10.192.122.3/32", "10.192.124.1/24"), Endpoints: gw},
			routes: pfx("10.192.122.3/32", "10.192.124.0/24"),
		},
		{
			name:   "IPv4-mapped endpoints are carved as IPv4",
			policy: Policy{Mode: ModeFull, Endpoints: addrs("::ffff:198.18.2.2")},
			out:    []string{"198.18.2.2"},
			in:     []string{"::ffff:198.18.2.1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Compute(tc.policy)
			require.NoError(t, err)
			for _, a := range tc.in {
				assert.True(t, plan.Contains(netip.MustParseAddr(a)), "%s should go through the tunnel", a)
			}
			for _, a := range tc.out {
				assert.False(t, plan.Contains(netip.MustParseAddr(a)), "%s should bypass the tunnel", a)
			}
			if tc.routes != nil {
				assert.Equal(t, tc.routes, plan.Routes)
			}
			if tc.nroute != 0 {
				assert.Len(t, plan.Routes, tc.nroute)
			}
			assertNoOverlap(t, plan.Routes)
			assert.Equal(t, DefaultMTU, plan.MTU)
		})
	}
}

func assertNoOverlap(t *testing.T, ps []netip.Prefix) {
	t.Helper()
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			assert.False(t, ps[i].Overlaps(ps[j]), "%s overlaps %s: not minimal", ps[i], ps[j])
		}
	}
}

func TestPlanWarnings(t *testing.T) {
	plan, err := Compute(Policy{Mode: ModeFull, CompanyDNS: addrs("10.99.0.1"), Exclude: pfx("10.99.0.0/24")})
	require.NoError(t, err)
	require.Len(t, plan.Warnings, 1)
	assert.Contains(t, plan.Warnings[0], "stays in the tunnel")
}

func TestPlanRejects(t *testing.T) {
	for _, p := range []Policy{
		{Mode: "bogus"},
		{Mode: ModeSplit},
		{Mode: ModeFull, MTU: 100},
		{Mode: ModeFull, Endpoints: []netip.Addr{{}}},
	} {
		_, err := Compute(p)
		assert.Error(t, err, "%+v", p)
	}
}

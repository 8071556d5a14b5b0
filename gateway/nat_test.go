package gateway

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNATRuleset(t *testing.T) {
	pool := netip.MustParsePrefix("10.99.0.0/24")
	corp := []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24"), netip.MustParsePrefix("10.78.0.5/16")}
	for _, tc := range []struct {
		name       string
		n          natRules
		want, none []string
	}{
		{"internet and company", natRules{iface: "tgw0", pol: forwardPolicy{pool: pool, company: corp, internet: true}},
			[]string{
				`iifname "tgw0" oifname "tgw0" counter drop`,
				`iifname "tgw0" ip daddr { 10.77.0.0/24, 10.78.0.0/16 } counter accept`,
				`iifname "tgw0" counter accept`,
				`oifname "tgw0" ct state established,related accept`,
				`ip saddr 10.99.0.0/24 oifname != "tgw0" ip daddr != { 10.77.0.0/24, 10.78.0.0/16 } counter masquerade`,
			},
			[]string{"reject"}},
		{"company only", natRules{iface: "tgw0", pol: forwardPolicy{pool: pool, company: corp}},
			[]string{`iifname "tgw0" counter reject with icmpx admin-prohibited`},
			[]string{"masquerade", `iifname "tgw0" counter accept`}},
		{"masquerade toward the company", natRules{iface: "tgw0", pol: forwardPolicy{pool: pool, company: corp}, masqCompany: true},
			[]string{`ip saddr 10.99.0.0/24 oifname != "tgw0" ip daddr { 10.77.0.0/24, 10.78.0.0/16 } counter masquerade`},
			[]string{"daddr != "}},
		{"no company prefixes", natRules{iface: "tgw0", pol: forwardPolicy{pool: pool, internet: true}},
			[]string{`ip saddr 10.99.0.0/24 oifname != "tgw0" counter masquerade`},
			[]string{"{ }", "daddr {"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := tc.n.ruleset()
			assert.True(t, strings.HasPrefix(rs, "table inet tether_gateway {}\ndelete table inet tether_gateway\n"), "replaces a leftover table atomically")
			for _, w := range tc.want {
				assert.Contains(t, rs, w)
			}
			for _, n := range tc.none {
				assert.NotContains(t, rs, n)
			}
		})
	}
}

func TestWireGuardModeValidation(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.WireGuard = &WireGuardConfig{Address: netip.MustParsePrefix("10.99.0.1/24"), KeyFile: "k", Store: "s", Endpoint: "gw.example.com:51820"}
		return c
	}
	c := base()
	c.WireGuard.Mode = "kernel"
	assert.ErrorContains(t, c.Validate(), "wireguard.mode")
	c = base()
	c.WireGuard.Mode, c.WireGuard.Interface = ModeTUN, "a-name-far-too-long"
	assert.ErrorContains(t, c.Validate(), "wireguard.interface")
	c = base()
	c.WireGuard.Mode, c.WireGuard.Interface = ModeTUN, "tgw1"
	assert.NoError(t, c.Validate())
	no := false
	c.WireGuard.ForwardInternet = &no
	assert.False(t, c.WireGuard.internet(c.TunnelPolicy()))
	c.WireGuard.ForwardInternet = nil
	c.Policy.AllowedModes = []string{"split"}
	assert.NoError(t, c.Validate())
	assert.False(t, c.WireGuard.internet(c.TunnelPolicy()), "split-only companies forward no internet by default")
	c.Policy.AllowedModes = nil
	assert.True(t, c.WireGuard.internet(c.TunnelPolicy()), "unset: both modes, full among them")
}

// TestForwardPolicyCoversAlwaysTunnel: clients route policy.always_tunnel
// through the tunnel in every mode, so the gateway forwards it beside the
// company prefixes, once each.
func TestForwardPolicyCoversAlwaysTunnel(t *testing.T) {
	corp, extra := netip.MustParsePrefix("10.77.0.0/16"), netip.MustParsePrefix("10.78.0.0/16")
	c := DefaultConfig()
	c.WireGuard = &WireGuardConfig{Address: netip.MustParsePrefix("10.99.0.1/24"), CompanyPrefixes: []netip.Prefix{corp}}
	c.Policy.AllowedModes = []string{"split"}
	c.Policy.AlwaysTunnel = []netip.Prefix{corp, extra}
	pol := policyOf(*c.WireGuard, c.TunnelPolicy())
	assert.Equal(t, []netip.Prefix{corp, extra}, pol.company)
	assert.False(t, pol.internet)
	assert.Equal(t, []netip.Prefix{corp}, c.WireGuard.CompanyPrefixes, "the config is not changed")
	assert.Equal(t, []netip.Prefix{corp, extra}, pol.forward().Allow)
}

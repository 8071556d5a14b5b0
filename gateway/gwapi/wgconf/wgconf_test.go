package wgconf

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
)

func enrollment(t *testing.T) gwapi.Enrollment {
	t.Helper()
	gk, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	return gwapi.Enrollment{PeerID: 1, Address: "10.99.0.2/24", GatewayPublicKey: gk.Public().String(), Endpoint: "198.51.100.7:51820",
		GatewayAddress: "10.99.0.1", CompanyPrefixes: []string{"10.77.0.0/16"}, AllowedModes: []string{"full", "split"}, MTU: 1380}
}

func TestFromEnrollmentSplit(t *testing.T) {
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	en := enrollment(t)
	cfg, plan, err := FromEnrollment(k, en, tunnel.ModeSplit, netip.MustParseAddr("198.51.100.7"))
	require.NoError(t, err)
	assert.Equal(t, tunnel.ModeSplit, plan.Mode)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.99.0.2/32")}, cfg.Interface.Addresses, "the device's address is a host route")
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.99.0.1")}, cfg.Interface.DNS, "no DNS in the enrollment: the gateway's tunnel address")
	require.Len(t, cfg.Peers, 1)
	assert.Equal(t, en.Endpoint, cfg.Peers[0].Endpoint)
	assert.Equal(t, en.GatewayPublicKey, cfg.Peers[0].PublicKey.String())
	assert.Equal(t, plan.Routes, cfg.Peers[0].AllowedIPs)
	assert.Contains(t, plan.Routes, netip.MustParsePrefix("10.99.0.0/24"), "the pool is a company route")
	assert.Contains(t, plan.Routes, netip.MustParsePrefix("10.77.0.0/16"))
	assert.Equal(t, 1380, plan.MTU)
}

func TestFromEnrollmentRefuses(t *testing.T) {
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	ep := netip.MustParseAddr("198.51.100.7")
	for _, tc := range []struct {
		name   string
		change func(*gwapi.Enrollment)
		want   string
	}{
		{"a mode the company forbids", func(e *gwapi.Enrollment) { e.AllowedModes = []string{"split"} }, "allows split tunnels, not full"},
		{"bad address", func(e *gwapi.Enrollment) { e.Address = "10.99.0.2" }, "address"},
		{"bad gateway key", func(e *gwapi.Enrollment) { e.GatewayPublicKey = "nope" }, "gateway key"},
		{"bad gateway address", func(e *gwapi.Enrollment) { e.GatewayAddress = "" }, "gateway address"},
		{"bad company prefix", func(e *gwapi.Enrollment) { e.CompanyPrefixes = []string{"corp"} }, "company prefix"},
		{"bad DNS", func(e *gwapi.Enrollment) { e.DNS = []string{"dns.corp"} }, "DNS"},
	} {
		en := enrollment(t)
		tc.change(&en)
		_, _, err := FromEnrollment(k, en, tunnel.ModeFull, ep)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
}

package gatewaytest_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// TestGatewayServesEverything: every part the fixture promises answers
// on its port.
func TestGatewayServesEverything(t *testing.T) {
	g := gatewaytest.New(t)
	ctx := context.Background()
	h, err := g.API.Ready(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", h.Status)
	info, err := g.API.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, gatewaytest.Name, info.Name)
	assert.True(t, strings.HasPrefix(g.URL(), "http://127.0.0.1:"), g.URL())
	assert.Empty(t, g.Pin(), "plain HTTP unless WithTLS")

	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(gatewaytest.BlockedName), dns.TypeA)
	resp, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, g.DNSAddr().String())
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, resp.Rcode, "the block list blocks")
	q.SetQuestion(dns.Fqdn(gatewaytest.CompanyName), dns.TypeA)
	resp, _, err = (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, g.DNSAddr().String())
	require.NoError(t, err)
	require.Len(t, resp.Answer, 1, "the company zone answers")
	assert.Equal(t, gatewaytest.TunnelAddress.Addr().String(), resp.Answer[0].(*dns.A).A.String())

	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(g.STAMPPort()))))
	require.NoError(t, err)
	defer c.Close()
	res, err := stamp.Probe(ctx, c, stamp.ProbeConfig{Count: 2, Interval: time.Millisecond, Wait: time.Second})
	require.NoError(t, err)
	assert.Len(t, res.RTTs, 2, "STAMP answers")

	cl := g.Connect(t, g.Token(t, 1))
	assert.Equal(t, "10.99.0.2", cl.Address().String())
	require.Eventually(t, func() bool { return cl.Reaches(500 * time.Millisecond) }, 10*time.Second, 10*time.Millisecond, "the tunnel reaches the gateway")
	ps, err := g.API.Peers(ctx)
	require.NoError(t, err)
	assert.Len(t, ps, 1)
}

func TestGatewayWithTLSAndChanges(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithTLS(), gatewaytest.WithConfig(func(c *gateway.Config) {
		c.Name, c.WireGuard, c.DNS, c.Measure.STAMPListen = "changed", nil, nil, ""
	}))
	assert.True(t, strings.HasPrefix(g.URL(), "https://"), g.URL())
	assert.Equal(t, g.Secrets.Pin, g.Pin())
	info, err := g.API.Info(context.Background())
	require.NoError(t, err, "the API client trusts the pin")
	assert.Equal(t, "changed", info.Name)
	assert.Zero(t, g.WireGuardPort())
	assert.Zero(t, g.STAMPPort())
	assert.False(t, g.DNSAddr().IsValid())
}

func TestStopEndsTheGatewayOnce(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.WireGuard, c.DNS = nil, nil }))
	g.Stop()
	g.Stop()
	_, err := g.API.Health(context.Background())
	assert.ErrorContains(t, err, "is the gateway running", "nothing answers once stopped")
}

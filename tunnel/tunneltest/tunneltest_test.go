package tunneltest_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

// TestPairCarriesTrafficAndStops: the client reaches an endless download
// inside the gateway's netstack, and the test's end takes the download
// and both engines down.
func TestPairCarriesTrafficAndStops(t *testing.T) {
	var p *tunneltest.Pair
	t.Run("running", func(t *testing.T) {
		p = tunneltest.NewPair(t, tunneltest.PairOptions{})
		ln, err := p.Gateway.Net().ListenTCPAddrPort(netip.AddrPortFrom(tunneltest.GatewayAddr, 9000))
		require.NoError(t, err)
		tunneltest.ServeEndless(t, ln)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := p.Client.DialContext(ctx, "tcp", netip.AddrPortFrom(tunneltest.GatewayAddr, 9000).String())
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.CopyN(io.Discard, c, 1<<20)
		require.NoError(t, err)
		assert.Equal(t, int64(1<<20), n)
		stats, err := p.Gateway.PeerStats()
		require.NoError(t, err)
		require.Len(t, stats, 1)
		assert.Equal(t, p.Gateway.ClientKey.Public(), stats[0].PublicKey)
	})
	assert.Equal(t, tunnel.HealthDown, p.Client.Status().Health, "the client is down after its test")
	assert.Equal(t, tunnel.HealthDown, p.Gateway.Status().Health, "and so is the gateway")
}

// TestClientConfigIsAWgQuickFile: what `tether tunnel up -c` reads.
func TestClientConfigIsAWgQuickFile(t *testing.T) {
	gw := tunneltest.NewGateway(t, tunnel.UserspaceOptions{})
	cfg := gw.ClientConfig(netip.MustParsePrefix("10.77.0.0/16"))
	back, err := tunnel.ParseConfig(bytes.NewReader(cfg.Marshal()), "wg0.conf")
	require.NoError(t, err)
	require.Len(t, back.Peers, 1)
	assert.Equal(t, gw.Endpoint.String(), back.Peers[0].Endpoint)
	assert.Equal(t, []netip.Prefix{tunneltest.Network, netip.MustParsePrefix("10.77.0.0/16")}, back.Peers[0].AllowedIPs)
	assert.True(t, back.Interface.PrivateKey.Equal(gw.ClientKey))
	assert.True(t, strings.HasPrefix(gw.Endpoint.String(), "127.0.0.1:"))
}

// TestServeEndlessEndsItsConnections: a connection still downloading
// when the test ends is closed, so nothing outlives the test.
func TestServeEndlessEndsItsConnections(t *testing.T) {
	var c net.Conn
	t.Run("running", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		tunneltest.ServeEndless(t, ln)
		c, err = net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_, err = io.CopyN(io.Discard, c, 1<<16)
		require.NoError(t, err)
	})
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	assert.NoError(t, err, "the server closed the connection: EOF, not a timeout")
}

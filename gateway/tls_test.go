package gateway_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/tunnel"
)

// tlsGateway is a gateway with its API on HTTPS behind a fresh
// self-signed certificate, as init sets one up.
func tlsGateway(t *testing.T) *gatewaytest.Gateway {
	t.Helper()
	g := gatewaytest.New(t, gatewaytest.WithTLS())
	st, err := os.Stat(g.Secrets.CertKeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the TLS key is a secret")
	require.Equal(t, g.Secrets.Pin, g.Pin())
	require.True(t, strings.HasPrefix(g.URL(), "https://"))
	return g
}

func TestEnrollOverHTTPSWithAPinnedCertificate(t *testing.T) {
	g := tlsGateway(t)
	s, pin := g.Server, g.Pin()
	ctx := context.Background()
	client := func(cfg gwapi.Config) *gwapi.Client {
		cfg.BaseURL = s.URL()
		c, err := gwapi.New(cfg)
		require.NoError(t, err)
		return c
	}
	enroll := func(c *gwapi.Client, token string) (gwapi.Enrollment, error) {
		k, err := tunnel.GeneratePrivateKey()
		require.NoError(t, err)
		return c.Enroll(ctx, gwapi.EnrollRequest{Token: token, PublicKey: k.Public().String(), Label: "https"})
	}
	pinned := client(gwapi.Config{Pin: pin, AdminToken: g.Secrets.AdminToken})
	tok, err := pinned.CreateToken(ctx, gwapi.TokenRequest{TTL: "1h", Uses: 2})
	require.NoError(t, err)
	en, err := enroll(pinned, tok.Secret)
	require.NoError(t, err)
	assert.NotEmpty(t, en.Address)

	// A wrong pin: someone in the path, or another gateway. Nothing is
	// sent: the token is still good afterwards.
	_, err = enroll(client(gwapi.Config{Pin: "sha256:" + strings.Repeat("ab", 32)}), tok.Secret)
	require.ErrorIs(t, err, gwapi.ErrPinMismatch)

	// No pin: the system's roots do not know a self-signed certificate.
	_, err = enroll(client(gwapi.Config{}), tok.Secret)
	var unknown x509.UnknownAuthorityError
	require.True(t, errors.As(err, &unknown), "%v", err)

	// Plain HTTP to the TLS port gets nowhere either.
	plain, err := gwapi.New(gwapi.Config{BaseURL: strings.Replace(s.URL(), "https://", "http://", 1)})
	require.NoError(t, err)
	_, err = enroll(plain, tok.Secret)
	require.Error(t, err)

	_, err = enroll(pinned, tok.Secret)
	require.NoError(t, err, "the refused attempts spent no use of the token")
}

func TestDiagOverHTTPS(t *testing.T) {
	netlab.HoldCPU(t)
	g := tlsGateway(t)
	tc, err := gwapi.PinnedTLS(g.Pin())
	require.NoError(t, err)
	// The router is loopback: the machine's own default gateway may
	// answer neither ICMP nor TCP (a CI host's did not), and this test is
	// about the gateway over HTTPS.
	c, err := netdiag.New(netdiag.Config{Server: g.URL(), TLS: tc, STAMPPort: g.STAMPPort(), Router: netip.MustParseAddr("127.0.0.1")})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep := c.Run(ctx, report.ModeFull)
	require.Empty(t, rep.Errors)
	require.NotNil(t, rep.Throughput)
	assert.Positive(t, rep.Throughput.DownloadMbps)
	assert.Positive(t, rep.Throughput.UploadMbps)
	require.NotNil(t, rep.Responsiveness)
	assert.Positive(t, rep.Responsiveness.ForeignProbes, "foreign probes complete TLS handshakes")
}

func TestPinParsing(t *testing.T) {
	hex := strings.Repeat("0A", 32)
	got, err := gwapi.ParsePin("SHA256:" + hex)
	require.NoError(t, err)
	assert.Equal(t, "sha256:"+strings.ToLower(hex), got)
	colons := "sha256:" + strings.TrimSuffix(strings.Repeat("0a:", 32), ":")
	got, err = gwapi.ParsePin(colons)
	require.NoError(t, err, "openssl's colon form")
	assert.Equal(t, "sha256:"+strings.ToLower(hex), got)
	for _, bad := range []string{"", "md5:00", "sha256:zz", "sha256:" + strings.Repeat("0", 62)} {
		_, err := gwapi.ParsePin(bad)
		assert.Error(t, err, bad)
	}
}

package gwapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
)

// TestClientAgainstARealGateway: every call against the gateway itself,
// over HTTPS with its pin, and the gateway's refusals as *gwapi.Error.
func TestClientAgainstARealGateway(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithTLS())
	c := g.API
	ctx := context.Background()

	h, err := c.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", h.Status)
	_, err = c.Ready(ctx)
	require.NoError(t, err)
	in, err := c.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, gatewaytest.Name, in.Name)

	tok, err := c.CreateToken(ctx, gwapi.TokenRequest{TTL: "1h", Uses: 1, Label: "gwapi"})
	require.NoError(t, err)
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	en, err := c.Enroll(ctx, gwapi.EnrollRequest{Token: tok.Secret, PublicKey: k.Public().String(), Label: "laptop"})
	require.NoError(t, err)
	assert.Equal(t, g.Secrets.PublicKey.String(), en.GatewayPublicKey)

	k2, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	_, err = c.Enroll(ctx, gwapi.EnrollRequest{Token: tok.Secret, PublicKey: k2.Public().String()})
	var apiErr *gwapi.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusForbidden, apiErr.Status)
	assert.Contains(t, apiErr.Message, "already used")

	ps, err := c.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, "laptop", ps[0].Label)
	rv, err := c.Revoke(ctx, en.PeerID)
	require.NoError(t, err)
	assert.True(t, rv.Peer.Revoked)
	_, err = c.Revoke(ctx, 999)
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusNotFound, apiErr.Status)

	ex, err := c.ExplainDNS(ctx, gatewaytest.BlockedName)
	require.NoError(t, err)
	assert.True(t, ex.Decision.Blocked)
	assert.Equal(t, "||phishing.test^", ex.Decision.Rule)
	assert.Equal(t, "phishing", ex.Decision.List)
	_, err = c.ExplainDNS(ctx, "bad..name")
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusBadRequest, apiErr.Status)

	wrong, err := gwapi.New(gwapi.Config{BaseURL: g.URL(), AdminToken: "wrong-token-wrong-token"})
	require.NoError(t, err)
	_, err = wrong.Peers(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pin it", "no pin: the system's roots do not know the certificate, and the error says what to do")
}

package gateway_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
)

// keyFromHex is a public key from its bytes, for keys no private key
// makes.
func keyFromHex(t *testing.T, h string) string {
	t.Helper()
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	var k tunnel.PublicKey
	copy(k[:], b)
	return k.String()
}

// TestHostileInput sends the gateway's API what a hostile client would:
// each request gets a clear 4xx, and none of them stores anything or
// spends a token's use.
func TestHostileInput(t *testing.T) {
	g := gatewaytest.New(t)
	base, testAdminToken := g.URL(), g.Secrets.AdminToken
	token := g.Token(t, 1)
	fresh := func() string {
		k, err := tunnel.GeneratePrivateKey()
		require.NoError(t, err)
		return k.Public().String()
	}
	gwKey := g.Secrets.PublicKey.String()
	const metricsToken = "metrics-token-not-configured-here"
	for _, tc := range []struct {
		name, method, path, bearer string
		body                       any
		code                       int
		want                       string
	}{
		// Enrollment: keys.
		{"all-zero key", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: strings.Repeat("A", 43) + "="}, 400, "small order"},
		{"low-order key", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token,
			PublicKey: keyFromHex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")}, 400, "small order"},
		{"low-order key, top bit set", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token,
			PublicKey: keyFromHex(t, "0100000000000000000000000000000000000000000000000000000000000080")}, 400, "small order"},
		{"the gateway's own key", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: gwKey}, 400, "gateway's own key"},
		{"key too short", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: "AAAA"}, 400, "public_key"},
		// Enrollment: labels that would drive a terminal or forge a row.
		{"label: clear screen", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(), Label: "\x1b[2J"}, 400, "control"},
		{"label: OSC title", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(), Label: "\x1b]0;pwned\x07"}, 400, "control"},
		{"label: forged row", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(),
			Label: "a\r\n9    10.99.0.9       AAAAAAAA…  admin"}, 400, "control"},
		{"label: right-to-left override", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(), Label: "evil\u202etxt.exe"}, 400, "formatting"},
		{"label: C1 CSI", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(), Label: "x\u009b2J"}, 400, "control"},
		{"label: invalid UTF-8", "POST", gwapi.PathEnroll, "", []byte(`{"token":"` + token + `","public_key":"` + fresh() + `","label":"a` + "\xff" + `"}`), 400, "label"},
		{"label: too long", "POST", gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(), Label: strings.Repeat("x", 129)}, 400, "over 128"},
		// Enrollment: bodies.
		{"JSON array", "POST", gwapi.PathEnroll, "", []byte(`[1,2]`), 400, "not an enrollment request"},
		{"JSON null", "POST", gwapi.PathEnroll, "", []byte(`null`), 400, "public_key"},
		{"wrong type", "POST", gwapi.PathEnroll, "", []byte(`{"token":1}`), 400, "not an enrollment request"},
		{"huge body", "POST", gwapi.PathEnroll, "", []byte(`{"label":"` + strings.Repeat("x", 1<<20) + `"}`), 413, "over"},
		// Tokens.
		{"token: TTL past 2262", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "2562047h", Uses: 1}, 400, "at most"},
		{"token: TTL of 2 years", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "17520h", Uses: 1}, 400, "at most"},
		{"token: TTL overflow", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "99999999999999h", Uses: 1}, 400, "ttl"},
		{"token: negative TTL", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "-1h", Uses: 1}, 400, "ttl"},
		{"token: TTL with escapes", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "\x1b[2J", Uses: 1}, 400, `\x1b[2J`},
		{"token: no uses", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "1h", Uses: 0}, 400, "uses"},
		{"token: a billion uses", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "1h", Uses: 1e9}, 400, "uses"},
		{"token: label with escapes", "POST", gwapi.PathAdminTokens, testAdminToken, gwapi.TokenRequest{TTL: "1h", Uses: 1, Label: "\x1b[31mred"}, 400, "control"},
		{"token: no auth", "POST", gwapi.PathAdminTokens, "", gwapi.TokenRequest{TTL: "1h", Uses: 1}, 401, "admin token"},
		// Revocation.
		{"revoke: not a number", "POST", "/v1/admin/peers/abc/revoke", testAdminToken, nil, 400, "not a number"},
		{"revoke: overflow", "POST", "/v1/admin/peers/99999999999999999999/revoke", testAdminToken, nil, 400, "not a number"},
		{"revoke: unknown", "POST", "/v1/admin/peers/-1/revoke", testAdminToken, nil, 404, "unknown peer"},
		{"revoke: wrong token", "POST", "/v1/admin/peers/1/revoke", "Bearer", nil, 401, "admin token"},
		// Metrics name peers and lists: never without a token.
		{"metrics: no token", "GET", "/metrics", "", nil, 401, "metrics token"},
		{"metrics: wrong token", "GET", "/metrics", metricsToken, nil, 401, "metrics token"},
		{"admin with an empty bearer", "GET", gwapi.PathAdminPeers, " ", nil, 401, "admin token"},
		// Devices: credentials that are none, or someone else's secret.
		{"device: no credential", "GET", gwapi.PathDevice, "", nil, 401, "device credential is required"},
		{"device: an empty bearer", "GET", gwapi.PathDevice, " ", nil, 401, "device credential"},
		{"device: a random credential", "GET", gwapi.PathDevice, "ttdc_AAAAAAAA_" + strings.Repeat("A", 32), nil, 401, "unknown device credential"},
		{"device: the enrollment token", "GET", gwapi.PathDevice, token, nil, 401, "unknown device credential"},
		{"device: the admin token", "GET", gwapi.PathDevice, testAdminToken, nil, 401, "unknown device credential"},
		{"device: a huge credential", "GET", gwapi.PathDevice, "ttdc_" + strings.Repeat("A", 6000), nil, 401, "unknown device credential"},
		{"device: SQL in the ID", "GET", gwapi.PathDevice, "ttdc_' OR 1=1_" + strings.Repeat("A", 32), nil, 401, "unknown device credential"},
		{"device: a non-ASCII credential", "GET", gwapi.PathDevice, "ttdc_AAAAAAAA_" + strings.Repeat("é", 16), nil, 401, "unknown device credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, base+tc.path, tc.bearer, tc.body)
			assert.Equal(t, tc.code, code, "%s", body)
			var e gwapi.Error
			require.NoError(t, json.Unmarshal(body, &e), "every error is the JSON envelope: %s", body)
			assert.Contains(t, e.Message, tc.want)
			for _, r := range e.Message {
				assert.False(t, r == 0x1b || r == '\r' || r == '\n', "the error quotes a control character: %q", e.Message)
			}
		})
	}
	// Nothing was stored, and the token still has its use.
	ps, err := g.API.Peers(context.Background())
	require.NoError(t, err)
	assert.Empty(t, ps, "no hostile request stored a peer")
	code, body := call(t, "POST", base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: fresh(), Label: "Zoë's laptop 👩‍💻"})
	assert.Equal(t, http.StatusOK, code, "the token kept its use, and a plain Unicode label is fine: %s", body)
}

// TestEnrollRetryGetsTheSameEnrollment: a client whose answer was lost
// (a crash between the commit and the reply) retries with the same key
// and token and gets its enrollment back, where it used to get 409 with
// the token's use gone; only the device credential is new
// (TestEnrollRetryRotatesTheCredential).
func TestEnrollRetryGetsTheSameEnrollment(t *testing.T) {
	g := gatewaytest.New(t)
	base := g.URL()
	token := g.Token(t, 1)
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	req := gwapi.EnrollRequest{Token: token, PublicKey: k.Public().String(), Label: "retry"}
	code, first := call(t, "POST", base+gwapi.PathEnroll, "", req)
	require.Equal(t, http.StatusOK, code, "%s", first)
	code, again := call(t, "POST", base+gwapi.PathEnroll, "", req)
	require.Equal(t, http.StatusOK, code, "%s", again)
	var a, b map[string]any
	require.NoError(t, json.Unmarshal(first, &a))
	require.NoError(t, json.Unmarshal(again, &b))
	assert.NotEqual(t, a["device_credential"], b["device_credential"], "a new credential")
	delete(a, "device_credential")
	delete(b, "device_credential")
	assert.Equal(t, a, b)
	ps, err := g.API.Peers(context.Background())
	require.NoError(t, err)
	assert.Len(t, ps, 1, "one peer, not two")
	// Another key with the spent token is still refused.
	k2, _ := tunnel.GeneratePrivateKey()
	code, _ = call(t, "POST", base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: k2.Public().String()})
	assert.Equal(t, http.StatusForbidden, code)
}

// TestRevokedAddressIsQuarantined: with the default quarantine, the
// address of a peer revoked a moment ago is not given to the next one.
func TestRevokedAddressIsQuarantined(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.WireGuard.Address = netip.MustParsePrefix("10.99.0.1/29") }))
	base := g.URL()
	token := g.Token(t, 3)
	enroll := func() (int, gwapi.Enrollment, string) {
		k, _ := tunnel.GeneratePrivateKey()
		code, body := call(t, "POST", base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: k.Public().String()})
		var en gwapi.Enrollment
		_ = json.Unmarshal(body, &en)
		return code, en, string(body)
	}
	code, a, body := enroll()
	require.Equal(t, http.StatusOK, code, body)
	_, err := g.API.Revoke(context.Background(), a.PeerID)
	require.NoError(t, err)
	code, b, body := enroll()
	require.Equal(t, http.StatusOK, code, body)
	assert.NotEqual(t, a.Address, b.Address, "the revoked address is quarantined")
}

// TestMetricsNeedAToken: /metrics names peers' traffic and handshake
// times; the admin token or the metrics token reads it, nothing else, and
// the metrics token is no admin token.
func TestMetricsNeedAToken(t *testing.T) {
	g := gatewaytest.New(t)
	base, admin, metrics := g.URL(), g.Secrets.AdminToken, g.Secrets.MetricsToken
	code, body := call(t, "GET", base+"/metrics", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "%s", body)
	code, _ = call(t, "GET", base+"/metrics", admin, nil)
	assert.Equal(t, http.StatusOK, code, "the admin token reads metrics")
	code, body = call(t, "GET", base+"/metrics", metrics, nil)
	assert.Equal(t, http.StatusOK, code, "%s", body)
	assert.Contains(t, string(body), "go_goroutines")
	code, _ = call(t, "POST", base+gwapi.PathAdminTokens, metrics, gwapi.TokenRequest{TTL: "1h", Uses: 1})
	assert.Equal(t, http.StatusUnauthorized, code, "the metrics token is no admin token")

	// With only a metrics token, the admin API is off.
	g2 := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.API.AdminTokenFile = "" }))
	code, body = call(t, "POST", g2.URL()+gwapi.PathAdminTokens, g2.Secrets.MetricsToken, gwapi.TokenRequest{TTL: "1h", Uses: 1})
	assert.Equal(t, http.StatusNotFound, code, "%s", body)
	assert.Contains(t, string(body), "set api.admin_token_file")
	code, _ = call(t, "GET", g2.URL()+"/metrics", g2.Secrets.MetricsToken, nil)
	assert.Equal(t, http.StatusOK, code)
}

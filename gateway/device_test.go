package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/tunnel"
)

// syncBuffer is a log sink the gateway's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testPolicy is a policy unlike the default in every field.
var testPolicy = gwapi.Policy{AllowedModes: []string{gwapi.ModeSplit}, DefaultMode: gwapi.ModeSplit, ForceFullOnUntrusted: false,
	FullNeeds:    gwapi.FullNeeds{MinUpMbps: 5, MinDownMbps: 20, MaxLoadedMS: 100},
	AlwaysTunnel: []netip.Prefix{netip.MustParsePrefix("10.78.0.0/16")}, FailClosed: gwapi.FailClosedRequired}

// TestEnrollmentCarriesPolicyDiagnosticsAndCredential: the enrollment
// answer, over the real API, carries the configured policy (and its
// allowed modes for older clients), the diagnostics hints with the STAMP
// port the reflector listens on, and a device credential that GET
// /v1/device accepts. No credential ever reaches the log.
func TestEnrollmentCarriesPolicyDiagnosticsAndCredential(t *testing.T) {
	var logs syncBuffer
	g := gatewaytest.New(t, gatewaytest.WithPolicy(testPolicy),
		gatewaytest.WithOptions(gateway.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	d := g.Enroll(t, g.Token(t, 1))
	en := d.Enrollment
	require.NotNil(t, en.Policy)
	assert.Equal(t, testPolicy, *en.Policy)
	assert.Equal(t, []string{"split"}, en.AllowedModes, "allowed_modes repeats the policy's")
	require.NotNil(t, en.Diagnostics)
	assert.Equal(t, gwapi.Diagnostics{STAMPPort: g.STAMPPort(), Canary: gatewaytest.BlockedName, ProbeName: gatewaytest.CompanyName}, *en.Diagnostics)
	assert.NotZero(t, en.Diagnostics.STAMPPort, "the port the reflector listens on, not the config's :0")
	assert.Regexp(t, `^ttdc_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{32}$`, d.Credential())

	ctx := context.Background()
	dev, err := g.API.Device(ctx, d.Credential())
	require.NoError(t, err)
	assert.Equal(t, gwapi.Device{PeerID: en.PeerID, Address: en.Address, Policy: testPolicy, Diagnostics: *en.Diagnostics}, dev)

	_, err = g.API.Revoke(ctx, en.PeerID)
	require.NoError(t, err)
	_, err = g.API.Device(ctx, d.Credential())
	require.ErrorIs(t, err, gwapi.ErrRevoked)
	assert.NotContains(t, logs.String(), d.Credential()[len("ttdc_"):], "a credential is never logged")
	assert.NotEmpty(t, logs.String(), "the log was captured")
}

// TestDeviceEndpoint: a live credential gets its device, a revoked one
// says since when (at once, when the revocation call returns), a missing
// or unknown one gets 401, and a retried enrollment's new credential
// replaces the one before.
func TestDeviceEndpoint(t *testing.T) {
	g := gatewaytest.New(t)
	ctx := context.Background()
	token := g.Token(t, 2)
	a, b := g.Enroll(t, token), g.Enroll(t, token)

	dev, err := g.API.Device(ctx, a.Credential())
	require.NoError(t, err)
	assert.Equal(t, a.Enrollment.PeerID, dev.PeerID)
	assert.Equal(t, gwapi.DefaultPolicy(), dev.Policy, "the default policy")

	// Missing and unknown credentials: 401, the envelope, no code.
	for _, tc := range []struct{ name, bearer, want string }{
		{"missing", "", "device credential is required"},
		{"unknown", "ttdc_AAAAAAAA_" + strings.Repeat("A", 32), "unknown device credential"},
		{"another's ID, a wrong secret", a.Credential()[:len("ttdc_")+9] + strings.Repeat("B", 32), "unknown device credential"},
		{"an enrollment token", token, "unknown device credential"},
	} {
		code, body := call(t, "GET", g.URL()+gwapi.PathDevice, tc.bearer, nil)
		assert.Equal(t, http.StatusUnauthorized, code, "%s: %s", tc.name, body)
		assert.Contains(t, string(body), tc.want, tc.name)
		assert.NotContains(t, string(body), `"code"`, tc.name)
	}

	// Revocation kills the credential before the call returns.
	rv, err := g.API.Revoke(ctx, a.Enrollment.PeerID)
	require.NoError(t, err)
	_, err = g.API.Device(ctx, a.Credential())
	require.ErrorIs(t, err, gwapi.ErrRevoked)
	var ge *gwapi.Error
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, http.StatusForbidden, ge.Status)
	assert.Equal(t, gwapi.CodeRevoked, ge.Code)
	assert.Contains(t, ge.Message, "this device was revoked at "+rv.Peer.RevokedAt.UTC().Format(time.RFC3339))
	_, err = g.API.Device(ctx, b.Credential())
	assert.NoError(t, err, "the other device is not touched")
}

// TestEnrollRetryRotatesTheCredential: a retried enrollment (same key,
// same token) gets the same enrollment with a new credential, and the
// first one is dead.
func TestEnrollRetryRotatesTheCredential(t *testing.T) {
	g := gatewaytest.New(t)
	ctx := context.Background()
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	req := gwapi.EnrollRequest{Token: g.Token(t, 1), PublicKey: k.Public().String(), Label: "retry"}
	first, err := g.API.Enroll(ctx, req)
	require.NoError(t, err)
	// The first credential in use, so the gateway has verified (and
	// cached) it before the retry.
	_, err = g.API.Device(ctx, first.DeviceCredential)
	require.NoError(t, err)
	require.Zero(t, poolCap(t, g.URL(), first.DeviceCredential), "the trusted pool")

	again, err := g.API.Enroll(ctx, req)
	require.NoError(t, err)
	assert.NotEqual(t, first.DeviceCredential, again.DeviceCredential)
	same := again
	same.DeviceCredential = first.DeviceCredential
	assert.Equal(t, first, same, "the same enrollment but for the credential")
	_, err = g.API.Device(ctx, first.DeviceCredential)
	var ge *gwapi.Error
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, http.StatusUnauthorized, ge.Status, "the first credential died with the retry")
	_, err = g.API.Device(ctx, again.DeviceCredential)
	assert.NoError(t, err)
	assert.Equal(t, measureserver.DefaultPublicLimits.MaxMbps, poolCap(t, g.URL(), first.DeviceCredential),
		"the first credential's cached trust died with it: the public pool")
	assert.Zero(t, poolCap(t, g.URL(), again.DeviceCredential), "the new one: the trusted pool, unguarded here")
}

// poolCap is the bandwidth guard the API's measurement service
// advertises to a request with token as its bearer token: the pool it
// serves it from.
func poolCap(t *testing.T, base, token string) float64 {
	t.Helper()
	code, body := call(t, "GET", base+measureserver.PathConfig, token, nil)
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		Cap float64 `json:"tether_rate_cap_mbps"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	return doc.Cap
}

// TestDeviceCredentialsCannotBeGuessed: wrong credentials are limited
// per client network; past the limit the network gets 429, even with a
// good credential (nothing is checked), and other networks are not
// touched. A network's good credentials spend nothing.
func TestDeviceCredentialsCannotBeGuessed(t *testing.T) {
	g := gatewaytest.New(t)
	d := g.Enroll(t, g.Token(t, 1))
	url := g.URL() + gwapi.PathDevice
	for range 50 {
		code, body := call(t, "GET", url, d.Credential(), nil)
		require.Equal(t, http.StatusOK, code, "good credentials are never limited: %s", body)
	}
	wrong := "ttdc_AAAAAAAA_" + strings.Repeat("A", 32)
	limited := 0
	for i := range 30 {
		code, _ := call(t, "GET", url, wrong, nil)
		if code == http.StatusTooManyRequests {
			limited = i
			break
		}
		require.Equal(t, http.StatusUnauthorized, code)
	}
	// 20 at once, then 10 a minute: one more may have come back if the
	// loop took over 6 s.
	assert.True(t, limited == 20 || limited == 21, "20 wrong credentials, then 429; got 429 after %d", limited)
	code, body := call(t, "GET", url, d.Credential(), nil)
	assert.Equal(t, http.StatusTooManyRequests, code, "a limited network's guesses are not checked, however good: %s", body)
	assert.Contains(t, string(body), "too many wrong device credentials")

	// Another client network (127.0.0.2 is another IPv4 address) is not
	// limited.
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	c, err := gwapi.New(gwapi.Config{BaseURL: g.URL(), HTTP: hc})
	require.NoError(t, err)
	_, err = c.Device(context.Background(), d.Credential())
	assert.NoError(t, err, "another network")
}

// measureGet GETs a measurement service URL with token as the bearer
// token (none when empty), reads the body, and returns the status.
func measureGet(t *testing.T, url, token string, hc *http.Client) (int, int64) {
	t.Helper()
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, n
}

// TestDeviceCredentialGetsTheTrustedPool: on the API's measurement
// service, a request with a device's credential is served from the
// enrolled devices' pool while the public pool's budget for this network
// is spent; once the device is revoked, it is not.
func TestDeviceCredentialGetsTheTrustedPool(t *testing.T) {
	const budget = 64 << 10 // the least budget measureserver allows
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.Measure.Public.ClientBytes = budget }))
	d := g.Enroll(t, g.Token(t, 1))
	down := g.URL() + measureserver.PathDown + "?bytes="
	code, n := measureGet(t, down+"65536", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.EqualValues(t, budget, n)
	code, _ = measureGet(t, down+"1024", "", nil)
	require.Equal(t, http.StatusTooManyRequests, code, "the public budget is spent")
	code, _ = measureGet(t, down+"1024", "ttdc_AAAAAAAA_"+strings.Repeat("A", 32), nil)
	assert.Equal(t, http.StatusTooManyRequests, code, "an unknown credential is the public pool")

	code, n = measureGet(t, down+"1048576", d.Credential(), nil)
	assert.Equal(t, http.StatusOK, code, "the device's credential: the trusted pool")
	assert.EqualValues(t, 1<<20, n)
	code, _ = measureGet(t, down+"1024", d.Credential(), nil)
	assert.Equal(t, http.StatusOK, code, "again, from the cache")

	_, err := g.API.Revoke(context.Background(), d.Enrollment.PeerID)
	require.NoError(t, err)
	code, _ = measureGet(t, down+"1024", d.Credential(), nil)
	assert.Equal(t, http.StatusTooManyRequests, code, "revoked: the public pool again, at once")
}

// TestNoWireGuardNoDevices: without a WireGuard endpoint there are no
// devices; the endpoint says so, and credentials buy nothing.
func TestNoWireGuardNoDevices(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.WireGuard = nil }))
	_, err := g.API.Device(context.Background(), "ttdc_AAAAAAAA_"+strings.Repeat("A", 32))
	var ge *gwapi.Error
	require.True(t, errors.As(err, &ge), "%v", err)
	assert.Equal(t, http.StatusNotFound, ge.Status)
}

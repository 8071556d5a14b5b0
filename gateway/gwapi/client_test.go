package gwapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gwapi"
)

// fakeGateway answers every request with h, counting them.
func fakeGateway(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newClient(t *testing.T, cfg gwapi.Config) *gwapi.Client {
	t.Helper()
	c, err := gwapi.New(cfg)
	require.NoError(t, err)
	return c
}

// TestClientSendsWhatTheAPIExpects: each call's method, path, admin
// token and body, and its answer decoded.
func TestClientSendsWhatTheAPIExpects(t *testing.T) {
	const admin = "admin-token-0123456789abcdef"
	type seen struct{ method, path, auth, body string }
	var last seen
	srv, _ := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last = seen{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), string(b)}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case gwapi.PathHealth, gwapi.PathReady:
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		case gwapi.PathInfo:
			_, _ = io.WriteString(w, `{"name":"hq","version":"v1"}`)
		case gwapi.PathEnroll:
			_, _ = io.WriteString(w, `{"peer_id":7,"address":"10.99.0.2/24"}`)
		case gwapi.PathAdminTokens:
			_, _ = io.WriteString(w, `{"id":"t1","secret":"s","uses":2}`)
		case gwapi.PathAdminPeers:
			_, _ = io.WriteString(w, `[{"id":1,"label":"a"},{"id":2,"label":"b"}]`)
		case gwapi.RevokePath(3):
			_, _ = io.WriteString(w, `{"peer":{"id":3,"revoked":true},"removed_in_ms":0.5,"sessions_ended":2}`)
		case gwapi.PathDNSExplain:
			_, _ = io.WriteString(w, `{"name":"a.test","decision":{"blocked":true,"rule":"||a.test^"},"summary":"blocked"}`)
		default:
			http.NotFound(w, r)
		}
	})
	c := newClient(t, gwapi.Config{BaseURL: srv.URL + "/", AdminToken: admin})
	assert.Equal(t, srv.URL, c.BaseURL(), "no trailing slash")
	ctx := context.Background()

	h, err := c.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, "ok", h.Status)
	assert.Equal(t, seen{"GET", gwapi.PathHealth, "", ""}, last, "no admin token on a public call")
	_, err = c.Ready(ctx)
	require.NoError(t, err)

	in, err := c.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hq", in.Name)

	en, err := c.Enroll(ctx, gwapi.EnrollRequest{Token: "tok", PublicKey: "pk", Label: "laptop"})
	require.NoError(t, err)
	assert.Equal(t, int64(7), en.PeerID)
	assert.Equal(t, "POST", last.method)
	assert.Empty(t, last.auth, "enrollment carries its own token, never the admin's")
	assert.JSONEq(t, `{"token":"tok","public_key":"pk","label":"laptop"}`, last.body)

	tc, err := c.CreateToken(ctx, gwapi.TokenRequest{TTL: "1h", Uses: 2})
	require.NoError(t, err)
	assert.Equal(t, "s", tc.Secret)
	assert.Equal(t, "Bearer "+admin, last.auth)

	ps, err := c.Peers(ctx)
	require.NoError(t, err)
	assert.Len(t, ps, 2)
	assert.Equal(t, seen{"GET", gwapi.PathAdminPeers, "Bearer " + admin, ""}, last)

	rv, err := c.Revoke(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, 2, rv.SessionsEnded)
	assert.Equal(t, seen{"POST", "/v1/admin/peers/3/revoke", "Bearer " + admin, ""}, last)

	ex, err := c.ExplainDNS(ctx, "a.test&x=1")
	require.NoError(t, err)
	assert.True(t, ex.Decision.Blocked)
	assert.Equal(t, gwapi.PathDNSExplain+"?name=a.test%26x%3D1", last.path, "the name is query-escaped")
}

// TestClientRefusesBadAnswers: what a wrong or hostile server sends
// becomes an error that says what happened, never a hang, a huge buffer
// or a half-decoded value.
func TestClientRefusesBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      http.HandlerFunc
		status int // the *gwapi.Error's, 0 for none
		want   string
	}{
		{"oversize", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"name":"`+strings.Repeat("x", 1<<20)+`"}`)
		}, 0, "over 16384 bytes"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<html>hello</html>")
		}, 0, "not the gateway API's"},
		{"error envelope", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"unknown enrollment token"}`)
		}, 403, "the gateway said 403 Forbidden: unknown enrollment token"},
		{"wrong status, no envelope", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream down", http.StatusBadGateway)
		}, 502, "the gateway said 502 Bad Gateway: upstream down"},
		{"wrong status, empty", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
		}, 418, "(no error message)"},
		{"wrong status, long body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, strings.Repeat("é", 1<<20))
		}, 500, "over 65536 bytes"},
		{"a success that is not 200", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, 204, "204 No Content"},
		{"a redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
		}, 302, "302 Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fakeGateway(t, tc.h)
			_, err := newClient(t, gwapi.Config{BaseURL: srv.URL}).Info(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "info: "), "the error names the call: %v", err)
			var apiErr *gwapi.Error
			if tc.status == 0 {
				assert.False(t, errors.As(err, &apiErr), "%v", err)
				return
			}
			require.True(t, errors.As(err, &apiErr), "%v", err)
			assert.Equal(t, tc.status, apiErr.Status)
		})
	}
}

func TestClientQuotesAnErrorBodyBriefly(t *testing.T) {
	srv, _ := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.Repeat("é", 300), http.StatusInternalServerError)
	})
	_, err := newClient(t, gwapi.Config{BaseURL: srv.URL}).Info(context.Background())
	var apiErr *gwapi.Error
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, strings.Repeat("é", 100)+"…", apiErr.Message, "cut on a character boundary")
}

func TestClientReadyListsProblems(t *testing.T) {
	srv, _ := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(gwapi.Health{Status: "unavailable", Problems: []string{"peer store: locked", "WireGuard is not listening"}})
	})
	h, err := newClient(t, gwapi.Config{BaseURL: srv.URL}).Ready(context.Background())
	var apiErr *gwapi.Error
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.Status)
	assert.Equal(t, "unavailable", h.Status)
	assert.Len(t, h.Problems, 2)
	assert.Contains(t, err.Error(), "not ready: peer store: locked; WireGuard is not listening")
}

func TestClientAdminCallsNeedTheToken(t *testing.T) {
	srv, n := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {})
	c := newClient(t, gwapi.Config{BaseURL: srv.URL})
	_, err := c.Peers(context.Background())
	require.ErrorIs(t, err, gwapi.ErrNoAdminToken)
	_, err = c.CreateToken(context.Background(), gwapi.TokenRequest{})
	require.ErrorIs(t, err, gwapi.ErrNoAdminToken)
	_, err = c.Revoke(context.Background(), 1)
	require.ErrorIs(t, err, gwapi.ErrNoAdminToken)
	assert.Zero(t, n.Load(), "nothing was sent")
}

func TestClientPinsTheCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"name":"tls"}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	right := gwapi.Fingerprint(srv.Certificate().Raw)
	in, err := newClient(t, gwapi.Config{BaseURL: srv.URL, Pin: right}).Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "tls", in.Name)

	_, err = newClient(t, gwapi.Config{BaseURL: srv.URL, Pin: "sha256:" + strings.Repeat("ab", 32)}).Info(context.Background())
	require.ErrorIs(t, err, gwapi.ErrPinMismatch)
	assert.Contains(t, err.Error(), "tether-gateway fingerprint", "the error says how to check the pin")

	_, err = newClient(t, gwapi.Config{BaseURL: srv.URL}).Info(context.Background())
	require.Error(t, err, "no pin: the system's roots do not know a self-signed certificate")
	assert.Contains(t, err.Error(), "certificate")
}

func TestClientCallsEndWithTheirContext(t *testing.T) {
	release := make(chan struct{})
	srv, _ := fakeGateway(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, gwapi.Config{BaseURL: srv.URL}).Info(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestClientSaysWhenNothingAnswers(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newClient(t, gwapi.Config{BaseURL: url}).Health(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is the gateway running")
}

func TestNewChecksItsConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  gwapi.Config
		want string
	}{
		{gwapi.Config{}, "want the API's base URL"},
		{gwapi.Config{BaseURL: "gw.example.com:8443"}, "want the API's base URL"},
		{gwapi.Config{BaseURL: "ftp://gw.example.com"}, "want the API's base URL"},
		{gwapi.Config{BaseURL: "https://gw.example.com/v1"}, "want the API's base URL"},
		{gwapi.Config{BaseURL: "http://gw.example.com", Pin: "sha256:" + strings.Repeat("ab", 32)}, "needs https"},
		{gwapi.Config{BaseURL: "https://gw.example.com", Pin: "md5:00"}, "certificate pin"},
	} {
		_, err := gwapi.New(tc.cfg)
		assert.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
	}
	_, err := gwapi.New(gwapi.Config{BaseURL: "http://gw.example.com", Pin: "bad", HTTP: http.DefaultClient})
	assert.NoError(t, err, "a given HTTP client decides TLS: the pin is not read")
}

func TestErrorEnvelope(t *testing.T) {
	b, err := json.Marshal(gwapi.Error{Status: 404, Message: "no such peer"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"error":"no such peer"}`, string(b), "the status is not in the body")
	assert.Equal(t, "the gateway said 404 Not Found: no such peer", (&gwapi.Error{Status: 404, Message: "no such peer"}).Error())
	assert.Equal(t, "/v1/admin/peers/42/revoke", gwapi.RevokePath(42))
}

package localapi_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
)

var ready = localapi.Status{
	State:   localapi.StateConnected,
	Version: "1.2.3",
	Since:   time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
	Gateway: localapi.GatewayStatus{URL: "https://gw:8443", Name: "hq", Reachable: true,
		RTT: localapi.Duration(1234 * time.Microsecond), LastCheck: time.Date(2026, 11, 22, 12, 0, 5, 0, time.UTC)},
}

func TestStatusRoundTrips(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(ready)
	st, err := d.Client().Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, ready, st)
}

// TestClientIsSafeForConcurrentUse: the tray calls one Client from its
// poll loop and its Refresh button at once. The Client used to build its
// HTTP client lazily without a lock, which -race reports here.
func TestClientIsSafeForConcurrentUse(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(ready)
	c := d.Client()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Status(context.Background())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func TestErrorAnswersAreTyped(t *testing.T) {
	d := localapitest.New(t)
	d.Fail(&localapi.Error{Status: http.StatusServiceUnavailable, Code: localapi.CodeInternal, Message: "the monitor is wedged"})
	_, err := d.Client().Status(context.Background())
	var e *localapi.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, localapi.Error{Status: 503, Code: localapi.CodeInternal, Message: "the monitor is wedged"}, *e)
	assert.EqualError(t, err, "localapi: /v1/status: tetherd answered 503: the monitor is wedged (internal)")

	d.SetStatus(ready)
	_, err = d.Client().Status(context.Background())
	assert.NoError(t, err, "SetStatus ends the failure")
}

func TestNoDaemon(t *testing.T) {
	t.Run("no socket", func(t *testing.T) {
		c := &localapi.Client{Socket: filepath.Join(t.TempDir(), "none.sock")}
		_, err := c.Status(context.Background())
		assert.ErrorIs(t, err, localapi.ErrNotRunning)
		assert.ErrorContains(t, err, "none.sock")
	})
	t.Run("stale socket", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "tetherd.sock")
		ln, err := net.Listen("unix", sock)
		require.NoError(t, err)
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		require.NoError(t, ln.Close())
		_, err = (&localapi.Client{Socket: sock}).Status(context.Background())
		assert.ErrorIs(t, err, localapi.ErrNotRunning)
	})
	t.Run("daemon stopped", func(t *testing.T) {
		d := localapitest.New(t)
		c := d.Client()
		_, err := c.Status(context.Background())
		require.NoError(t, err)
		d.Close()
		_, err = c.Status(context.Background())
		assert.ErrorIs(t, err, localapi.ErrNotRunning)
	})
}

// raw serves h on a socket, with this API's version header unless
// version says otherwise ("-" for none), and returns a client of it.
func raw(t *testing.T, version string, h http.HandlerFunc) *localapi.Client {
	t.Helper()
	sock := localapitest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if version != "-" {
			w.Header().Set(localapi.HeaderAPIVersion, version)
		}
		h(w, r)
	}))
	return &localapi.Client{Socket: sock}
}

func TestClientSendsItsVersion(t *testing.T) {
	got := make(chan string, 1)
	c := raw(t, "1", func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(localapi.HeaderAPIVersion)
		localapi.WriteJSON(w, ready)
	})
	_, err := c.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "1", <-got)
}

func TestVersionMismatch(t *testing.T) {
	for _, tc := range []struct {
		name, version, want string
	}{
		{"newer daemon", "2", "speaks local API version 2, this program version 1"},
		{"no version", "-", "does not say which local API version it speaks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := raw(t, tc.version, func(w http.ResponseWriter, _ *http.Request) {
				localapi.WriteJSON(w, map[string]any{"state": 42})
			})
			_, err := c.Status(context.Background())
			var ve *localapi.VersionError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, strings.TrimPrefix(tc.version, "-"), ve.Daemon)
			assert.Equal(t, c.Socket, ve.Socket)
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorContains(t, err, "install tether and tetherd of the same release")
		})
	}
}

func TestBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>hello</html>")) },
			"localapi: /v1/status: the daemon's answer is not the JSON expected"},
		{"wrong JSON", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"since":"yesterday"}`)) },
			"the daemon's answer is not the JSON expected"},
		{"oversize", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"version":"` + strings.Repeat("x", 1<<20) + `"}`))
		}, "localapi: /v1/status: the daemon's answer is over 1024 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := raw(t, "1", tc.h).Status(context.Background())
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestPlainErrorAnswer: an error answer that is not an Error still comes
// back as a *Error, coded by its status, quoting its text.
func TestPlainErrorAnswer(t *testing.T) {
	c := raw(t, "1", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	})
	_, err := c.Status(context.Background())
	var e *localapi.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, localapi.Error{Status: 502, Code: localapi.CodeInternal, Message: "upstream exploded"}, *e)
}

func TestCallsEndWithTheirContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := raw(t, "1", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Status(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// serveRecorded runs one request through Handler(routes).
func serveRecorded(routes http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	localapi.Handler(routes).ServeHTTP(rec, req)
	return rec
}

// TestHandlerAnswersEveryErrorAsAnEnvelope: whatever a route or the mux
// answers in error goes out as an Error, with the version header.
func TestHandlerAnswersEveryErrorAsAnEnvelope(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ok", func(w http.ResponseWriter, _ *http.Request) { localapi.WriteJSON(w, ready) })
	mux.HandleFunc("GET /v1/plain", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "disk on fire", 500) })
	mux.HandleFunc("GET /v1/silent", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("GET /v1/typed", func(w http.ResponseWriter, _ *http.Request) {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusConflict, Code: "not_enrolled", Message: "enroll first"})
	})
	for _, tc := range []struct {
		name, method, path string
		header             http.Header
		status             int
		want               localapi.Error
	}{
		{"unknown path", "GET", "/v2/status", nil, 404, localapi.Error{Code: localapi.CodeNotFound, Message: "404 page not found"}},
		{"wrong method", "POST", "/v1/ok", nil, 405, localapi.Error{Code: localapi.CodeMethodNotAllowed, Message: "Method Not Allowed"}},
		{"http.Error", "GET", "/v1/plain", nil, 500, localapi.Error{Code: localapi.CodeInternal, Message: "disk on fire"}},
		{"no body", "GET", "/v1/silent", nil, 418, localapi.Error{Code: localapi.CodeBadRequest, Message: "I'm a teapot"}},
		{"WriteError", "GET", "/v1/typed", nil, 409, localapi.Error{Code: "not_enrolled", Message: "enroll first"}},
		{"other version", "GET", "/v1/ok", http.Header{localapi.HeaderAPIVersion: {"7"}}, 400,
			localapi.Error{Code: localapi.CodeAPIVersion, Message: "this tetherd speaks local API version 1, the request version 7: install tether and tetherd of the same release"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveRecorded(mux, tc.method, tc.path, tc.header)
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, "1", rec.Header().Get(localapi.HeaderAPIVersion))
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var got localapi.Error
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), "body %q", rec.Body)
			assert.Equal(t, tc.want, got)
		})
	}

	rec := serveRecorded(mux, "GET", "/v1/ok", nil)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "1", rec.Header().Get(localapi.HeaderAPIVersion))
	var st localapi.Status
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &st))
	assert.Equal(t, ready, st)

	rec = serveRecorded(mux, "GET", "/v1/ok", http.Header{localapi.HeaderAPIVersion: {"1"}})
	assert.Equal(t, 200, rec.Code, "its own version is served")
}

func TestErrorMessages(t *testing.T) {
	assert.EqualError(t, &localapi.Error{Code: localapi.CodeNotFound, Message: "no such thing"}, "tetherd: no such thing (not_found)")
}

package client

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
)

func TestNextState(t *testing.T) {
	for _, tc := range []struct {
		obs  observations
		want localapi.State
	}{
		{observations{}, localapi.StateStarting},
		{observations{reachable: true}, localapi.StateStarting}, // not checked yet: no claim
		{observations{checked: true, reachable: true}, localapi.StateReady},
		{observations{checked: true}, localapi.StateGatewayUnreachable},
	} {
		assert.Equal(t, tc.want, gatewayState(tc.obs), "%+v", tc.obs)
	}
}

// startDaemon runs a daemon until the test ends and returns a local API
// client for it.
func startDaemon(t *testing.T, cfg Config) *localapi.Client {
	t.Helper()
	d, err := New(cfg, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_, err := os.Stat(cfg.Socket)
		assert.ErrorIs(t, err, os.ErrNotExist, "the daemon removes its socket on exit")
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon did not start: %v", err)
	}
	return &localapi.Client{Socket: cfg.Socket}
}

func waitState(t *testing.T, c *localapi.Client, want localapi.State) localapi.Status {
	t.Helper()
	var st localapi.Status
	require.Eventually(t, func() bool {
		var err error
		st, err = c.Status(context.Background())
		return err == nil && st.State == want
	}, 5*time.Second, 20*time.Millisecond, "state never became %s (last %+v)", want, st)
	return st
}

func TestDaemonReportsTheGateway(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.Name = "test-gw" }))
	url := g.URL()
	sock := filepath.Join(t.TempDir(), "tetherd.sock")
	c := startDaemon(t, Config{Gateway: url, Socket: sock, CheckInterval: 100 * time.Millisecond})

	st := waitState(t, c, localapi.StateReady)
	assert.Equal(t, url, st.Gateway.URL)
	assert.Equal(t, "test-gw", st.Gateway.Name)
	assert.Positive(t, st.Gateway.RTT)
	assert.False(t, st.Gateway.LastCheck.IsZero())

	fi, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(socketMode), fi.Mode().Perm())

	// The gateway goes away: the daemon notices and says why.
	g.Stop()
	st = waitState(t, c, localapi.StateGatewayUnreachable)
	assert.False(t, st.Gateway.Reachable)
	assert.Contains(t, st.Gateway.Error, "did not answer")
}

func TestDaemonRefusesASecondDaemonButReplacesAStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetherd.sock")
	// A stale socket file, as a crashed daemon leaves it.
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, err = os.Stat(sock)
	require.NoError(t, err)

	cfg := Config{Gateway: "http://127.0.0.1:9", Socket: sock}
	startDaemon(t, cfg)

	second, err := New(cfg, Options{})
	require.NoError(t, err)
	err = second.Run(context.Background())
	assert.ErrorContains(t, err, "another tetherd already serves")
}

// TestDaemonSpeaksTheLocalAPIContract: over its real socket, the daemon
// sends its API version on every answer and answers every error as a
// localapi.Error, which the real client reads as one.
func TestDaemonSpeaksTheLocalAPIContract(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetherd.sock")
	c := startDaemon(t, Config{Gateway: "http://127.0.0.1:9", Socket: sock})
	_, err := c.Status(context.Background())
	require.NoError(t, err)

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	for _, tc := range []struct {
		method, path string
		header       string // the request's Tether-Api-Version
		status       int
		code         localapi.ErrorCode
	}{
		{"GET", localapi.PathStatus, "", http.StatusOK, ""},
		{"GET", localapi.PathStatus, "1", http.StatusOK, ""},
		{"GET", "/v2/status", "", http.StatusNotFound, localapi.CodeNotFound},
		{"POST", localapi.PathStatus, "", http.StatusMethodNotAllowed, localapi.CodeMethodNotAllowed},
		{"GET", localapi.PathStatus, "2", http.StatusBadRequest, localapi.CodeAPIVersion},
	} {
		req, err := http.NewRequest(tc.method, "http://tetherd"+tc.path, nil)
		require.NoError(t, err)
		if tc.header != "" {
			req.Header.Set(localapi.HeaderAPIVersion, tc.header)
		}
		resp, err := hc.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, tc.status, resp.StatusCode, "%s %s", tc.method, tc.path)
		assert.Equal(t, "1", resp.Header.Get(localapi.HeaderAPIVersion), "%s %s", tc.method, tc.path)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s", tc.method, tc.path)
		if tc.code != "" {
			var e localapi.Error
			require.NoError(t, json.Unmarshal(body, &e), "%s %s: %q", tc.method, tc.path, body)
			assert.Equal(t, tc.code, e.Code, "%s %s", tc.method, tc.path)
			assert.NotEmpty(t, e.Message, "%s %s", tc.method, tc.path)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	good := Config{Gateway: "https://gw.example.com:8443", Socket: filepath.Join(dir, "s.sock"), CheckInterval: time.Second}
	p := filepath.Join(dir, "tetherd.yaml")
	require.NoError(t, WriteConfig(p, good))
	got, err := LoadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, good, got)

	for _, tc := range []struct{ yaml, want string }{
		{"socket: /x\n", "gateway: must name"},
		{"gateway: gw.example.com\n", "http:// or https://"},
		{"gateway: http://gw\ncheck_interval: 1ms\n", "below the minimum"},
		{"gateway: http://gw\nlog_level: chatty\n", "log_level"},
		{"gateway: http://gw\ngatway: x\n", "line 2: field gatway not found"},
	} {
		require.NoError(t, os.WriteFile(p, []byte(tc.yaml), 0o600))
		_, err := LoadConfig(p)
		assert.ErrorContains(t, err, tc.want, "config %q", tc.yaml)
	}
	def, err := func() (Config, error) {
		require.NoError(t, os.WriteFile(p, []byte("gateway: http://gw\n"), 0o600))
		return LoadConfig(p)
	}()
	require.NoError(t, err)
	assert.Equal(t, localapi.DefaultSocket, def.Socket)
	assert.Equal(t, DefaultCheckInterval, def.CheckInterval)
}

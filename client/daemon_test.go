package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/netdiag/report"
)

// startDaemon runs a daemon until the test ends and returns a local API
// client for it.
func startDaemon(t *testing.T, cfg Config) *localapi.Client {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(t.TempDir(), "state")
	}
	d, err := New(cfg, Options{NetWatcher: fixedNetwork{}, Logger: testLogger(t)})
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

// testLogger writes the daemon's log into the test's output, shown when
// it fails or with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func waitState(t *testing.T, c *localapi.Client, want localapi.State) localapi.Status {
	t.Helper()
	return waitStateWithin(t, c, want, 5*time.Second, nil)
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

	cfg := Config{Gateway: "http://127.0.0.1:9", Socket: sock, StateDir: filepath.Join(t.TempDir(), "state")}
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
	good := Config{Gateway: "https://gw.example.com:8443", Socket: filepath.Join(dir, "s.sock"), CheckInterval: time.Second, StateDir: filepath.Join(dir, "state"),
		CaptiveURL: "off", Resolvers: []string{"192.0.2.53:53"}}
	p := filepath.Join(dir, "tetherd.yaml")
	require.NoError(t, WriteConfig(p, good))
	got, err := LoadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, good, got)

	for _, tc := range []struct{ yaml, want string }{
		{"gateway_pin: sha256:00\n", "a pin needs a gateway"},
		{"gateway: gw.example.com\n", "http:// or https://"},
		{"gateway: http://gw\ncheck_interval: 1ms\n", "below the minimum"},
		{"gateway: http://gw\nlog_level: chatty\n", "log_level"},
		{"gateway: http://gw\ngatway: x\n", "line 2: field gatway not found"},
		{"captive_url: https://example.com/\n", "captive_url"},
		{"resolvers: [9.9.9.9]\n", "address:port"},
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
	assert.Equal(t, DefaultStateDir, def.StateDir)
	assert.Equal(t, DefaultCaptiveURL, def.CaptiveURL)
}

// fixedNetwork is a network that never changes.
type fixedNetwork struct{}

func (fixedNetwork) Watch(ctx context.Context) <-chan network {
	return debounce(ctx, nil, time.Second, func() network { return network{Interface: "test0"} })
}

// TestDaemonWithoutEnrollment: a fresh daemon says what to do next,
// refuses what needs an enrollment with that step, and keeps settings.
func TestDaemonWithoutEnrollment(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	sock := filepath.Join(t.TempDir(), "tetherd.sock")
	c := startDaemon(t, Config{Socket: sock, StateDir: state})
	st := waitState(t, c, localapi.StateNeedsEnrollment)
	assert.Contains(t, st.Reason, "tether enroll")
	assert.Nil(t, st.Enrollment)

	ctx := context.Background()
	_, err := c.Up(ctx, "")
	var le *localapi.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, localapi.CodeNotEnrolled, le.Code)
	_, err = c.Diagnose(ctx, true)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, localapi.CodeNotEnrolled, le.Code)
	_, err = c.LatestReport(ctx)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, localapi.CodeNotFound, le.Code)
	_, err = c.Enroll(ctx, localapi.EnrollRequest{URL: "https://gw.example.com:8443"})
	require.ErrorAs(t, err, &le)
	assert.Contains(t, le.Message, "needs a token")

	s, err := c.Settings(ctx)
	require.NoError(t, err)
	assert.Equal(t, defaultSettings(), s)
	s.Mode, s.Connect = localapi.ModeSplit, false
	got, err := c.SetSettings(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, s, got)
	for _, bad := range []localapi.Settings{{Mode: "half"}, {Mode: "auto", Engine: "warp"}} {
		_, err := c.SetSettings(ctx, bad)
		require.ErrorAs(t, err, &le, "%+v", bad)
		assert.Equal(t, localapi.CodeBadRequest, le.Code)
	}
	// Settings survive a restart, from the state directory (0600).
	fi, err := os.Stat(filepath.Join(state, fileSettings))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// TestDaemonReportsACorruptStateFile: a state file that does not parse
// is set aside and reported in the status, not silently dropped.
func TestDaemonReportsACorruptStateFile(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.MkdirAll(state, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(state, fileSettings), []byte("{mode: full"), 0o600))
	c := startDaemon(t, Config{Socket: filepath.Join(t.TempDir(), "s.sock"), StateDir: state})
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	require.Len(t, st.Problems, 1)
	assert.Contains(t, st.Problems[0], "corrupt")
	matches, _ := filepath.Glob(filepath.Join(state, fileSettings+".corrupt-*"))
	assert.Len(t, matches, 1, "the corrupt file is kept aside")
}

// TestEventStreamStartsWithTheState: a watcher first gets the current
// state, as one NDJSON line.
func TestEventStreamStartsWithTheState(t *testing.T) {
	c := startDaemon(t, Config{Socket: filepath.Join(t.TempDir(), "s.sock")})
	waitState(t, c, localapi.StateNeedsEnrollment)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var first localapi.Event
	err := c.Watch(ctx, func(ev localapi.Event) error {
		first = ev
		return errStop
	})
	require.ErrorIs(t, err, errStop)
	require.Equal(t, localapi.EventState, first.Type)
	assert.Equal(t, localapi.StateNeedsEnrollment, first.State.State)
	assert.False(t, first.Time.IsZero())
}

var errStop = errors.New("stop")

// TestAnotherUserIsRefused: only root, the daemon's user and the socket
// group may use the local API. Run as root, the test connects as uid
// 65534 (nobody): with the socket's 0660 mode the kernel refuses the
// connect; with the mode loosened by hand, the daemon itself refuses,
// from the caller's credentials (SO_PEERCRED).
func TestAnotherUserIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as another uid")
	}
	dir, err := os.MkdirTemp("", "tetherd-perm-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	sock := filepath.Join(dir, "tetherd.sock")
	startDaemon(t, Config{Socket: sock})
	// The test binary sits in go's private build directory: a copy the
	// other uid may run.
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	helper := filepath.Join(dir, "helper.test")
	require.NoError(t, os.WriteFile(helper, self, 0o755))
	asNobody := func() (int, string) {
		cmd := exec.Command(helper, "-test.run=^TestPeerHelper$")
		cmd.Env = append(os.Environ(), "TETHER_PEER_HELPER="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, _ := cmd.CombinedOutput()
		var code int
		var msg string
		_, _ = fmt.Sscanf(string(out), "status %d", &code)
		if i := strings.Index(string(out), "\n"); i >= 0 {
			msg = string(out[i+1:])
		}
		return code, msg
	}
	code, msg := asNobody()
	assert.Equal(t, -1, code, "the socket's mode lets uid 65534 connect: %s", msg)
	assert.Contains(t, msg, "permission denied")
	require.NoError(t, os.Chmod(sock, 0o666))
	code, msg = asNobody()
	assert.Equal(t, http.StatusForbidden, code, "%s", msg)
	assert.Contains(t, msg, "uid 65534 may not use tetherd")
}

// TestPeerHelper is the other uid's client in TestAnotherUserIsRefused.
func TestPeerHelper(t *testing.T) {
	sock := os.Getenv("TETHER_PEER_HELPER")
	if sock == "" {
		t.Skip("a helper process of TestAnotherUserIsRefused")
	}
	_, err := (&localapi.Client{Socket: sock}).Status(context.Background())
	var le *localapi.Error
	switch {
	case errors.As(err, &le):
		fmt.Printf("status %d\n%s\n", le.Status, le.Message)
	case err != nil:
		fmt.Printf("status -1\n%v\n", err)
	default:
		fmt.Printf("status 200\nserved\n")
	}
	os.Exit(0)
}

// TestLineAPI: the line monitor's endpoints answer, bad requests get a
// 400 with the envelope, and a snooze shows in the line's status.
func TestLineAPI(t *testing.T) {
	c := startDaemon(t, Config{Socket: filepath.Join(t.TempDir(), "d.sock"), StateDir: filepath.Join(t.TempDir(), "state")})
	ctx := context.Background()
	l, err := c.Line(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, "unknown", l.Finding.Kind, "not enrolled: nothing to probe")
	assert.NotNil(t, l.Samples)
	_, err = c.Line(ctx, 48*time.Hour)
	var le *localapi.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 400, le.Status)
	assert.Contains(t, le.Message, "up to 24h")

	_, err = c.Snooze(ctx, report.SuggestionEnableSQM, time.Hour)
	require.ErrorAs(t, err, &le)
	assert.Contains(t, le.Message, "use_hotspot and pause_own_transfers")
	_, err = c.Snooze(ctx, report.SuggestionUseHotspot, 30*24*time.Hour)
	require.ErrorAs(t, err, &le)
	assert.Contains(t, le.Message, "up to a week")
	a, err := c.Snooze(ctx, report.SuggestionUseHotspot, time.Hour)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), a.Until, 5*time.Second)
	l, err = c.Line(ctx, time.Hour)
	require.NoError(t, err)
	assert.WithinDuration(t, a.Until, l.Snoozed[report.SuggestionUseHotspot], 2*time.Second)
}

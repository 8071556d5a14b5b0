package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// startServer runs a gateway on an ephemeral loopback port until the test
// ends, and returns its base URL.
func startServer(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	return startServerWith(tb, cfg, Options{})
}

// startServerWith is startServer with opts; a nil clock is frozen at a
// fixed time.
func startServerWith(tb testing.TB, cfg Config, opts Options) (*Server, string) {
	tb.Helper()
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Measure.STAMPListen = "127.0.0.1:0"
	if opts.Now == nil {
		now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
		opts.Now = func() time.Time { return now }
	}
	s, err := New(cfg, opts)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		// Run returns once every service has: one that outlived its
		// socket used to spin a core for the rest of the test binary.
		select {
		case err := <-done:
			require.NoError(tb, err)
		case <-time.After(30 * time.Second):
			tb.Fatal("the gateway did not stop within 30 s of its context ending")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		tb.Fatalf("gateway did not start: %v", err)
	}
	return s, s.URL()
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	return resp.StatusCode
}

func TestServerHealthReadyInfo(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Name = "test-gw"
	_, base := startServer(t, cfg)

	var h gwapi.Health
	assert.Equal(t, http.StatusOK, getJSON(t, base+gwapi.PathHealth, &h))
	assert.Equal(t, "ok", h.Status)
	assert.Equal(t, http.StatusOK, getJSON(t, base+gwapi.PathReady, &h))

	var info gwapi.Info
	assert.Equal(t, http.StatusOK, getJSON(t, base+gwapi.PathInfo, &info))
	assert.Equal(t, "test-gw", info.Name)
	assert.Equal(t, 2026, info.Now.Year(), "the injected clock is used")

	resp, err := http.Post(base+gwapi.PathHealth, "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestServerServesTheMeasurementService(t *testing.T) {
	s, base := startServer(t, DefaultConfig())
	var doc struct {
		URLs map[string]string `json:"urls"`
	}
	assert.Equal(t, http.StatusOK, getJSON(t, base+"/.well-known/nq", &doc))
	assert.Equal(t, base+"/large", doc.URLs["large_https_download_url"])
	resp, err := http.Get(base + "/generate_204")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	// The STAMP reflector answers next to the API.
	c, err := net.Dial("udp", s.STAMPAddr().String())
	require.NoError(t, err)
	defer c.Close()
	res, err := stamp.Probe(context.Background(), c, stamp.ProbeConfig{Count: 3, Interval: time.Millisecond, Wait: time.Second})
	require.NoError(t, err)
	assert.Len(t, res.RTTs, 3)
}

func TestServerNotReadyBeforeListening(t *testing.T) {
	s, err := New(DefaultConfig(), Options{})
	require.NoError(t, err)
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodGet, gwapi.PathReady, nil)
	s.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.code)
}

func TestServerReportsABusyPort(t *testing.T) {
	_, base := startServer(t, DefaultConfig())
	cfg := DefaultConfig()
	cfg.API.Listen = base[len("http://"):]
	cfg.Measure.STAMPListen = ""
	s, err := New(cfg, Options{})
	require.NoError(t, err)
	err = s.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is another gateway running")
}

func TestConfigRoundTripAndValidation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	want := DefaultConfig()
	want.Name = "hq"
	require.NoError(t, WriteConfig(path, want))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.ErrorIs(t, WriteConfig(path, want), os.ErrExist, "init never overwrites a config")

	for _, tc := range []struct{ yaml, want string }{
		{"name: ''\n", "name: must not be empty"},
		{"api:\n  listen: nope\n", "api.listen"},
		{"api:\n  listen: 127.0.0.1:99999\n", "port must be a number"},
		{"log_level: loud\n", "log_level"},
		{"measure:\n  stamp_listen: 862\n", "measure.stamp_listen"},
		{"nmae: x\n", "line 1: field nmae not found"},
	} {
		p := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(p, []byte(tc.yaml), 0o600))
		_, err := LoadConfig(p)
		assert.ErrorContains(t, err, tc.want, "config %q", tc.yaml)
	}
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestBandwidthGuardCapsSpeedTests runs a full diagnosis against a
// gateway whose public guard is 60 Mbit/s: loopback carries far more, so
// the figures sit at the cap, and the report names the cap so the line is
// not blamed.
func TestBandwidthGuardCapsSpeedTests(t *testing.T) {
	netlab.HoldCPU(t)
	cfg := DefaultConfig()
	cfg.Measure.Public.MaxMbps = 60
	s, base := startServer(t, cfg)
	c, err := netdiag.New(netdiag.Config{Server: base, STAMPPort: uint16(s.STAMPAddr().(*net.UDPAddr).Port)})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep := c.Run(ctx, report.ModeFull)
	require.NotNil(t, rep.Throughput)
	t.Logf("guard 60 Mbit/s: download %.1f, upload %.1f Mbit/s", rep.Throughput.DownloadMbps, rep.Throughput.UploadMbps)
	assert.Equal(t, 60.0, rep.Throughput.ServerCapMbps)
	// The upload is counted from bytes the server acknowledged, and a new
	// connection's receive buffer is acknowledged ahead of the guard: the
	// client adds no streams at the guard, so none fill inside the
	// window it reports (91 and 95 Mbit/s here before it stopped).
	assert.LessOrEqual(t, rep.Throughput.DownloadMbps, 60*1.05)
	assert.LessOrEqual(t, rep.Throughput.UploadMbps, 60*1.08)
	assert.Positive(t, rep.Throughput.DownloadMbps)
	assert.Positive(t, rep.Throughput.UploadMbps)
}

// TestShutdownEndsSpeedTestsAndDrains: a speed test never ends by
// itself, so shutting down must end it, and Run must return cleanly
// (not after the grace period with an error).
func TestShutdownEndsSpeedTestsAndDrains(t *testing.T) {
	cfg := DefaultConfig()
	cfg.API.Listen, cfg.Measure.STAMPListen = "127.0.0.1:0", ""
	s, err := New(cfg, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	resp, err := http.Get(s.URL() + "/large")
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := make([]byte, 1<<20)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err, "the download is running")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a clean shutdown")
	case <-time.After(shutdownGrace):
		t.Fatal("Run waited on an open-ended download for the whole grace period")
	}
	_, err = io.Copy(io.Discard, resp.Body)
	assert.Error(t, err, "the download was cut, not completed: /large is 8 GiB")
}

// TestPublicSpeedTestsHaveConservativeDefaults: with nothing configured,
// the public API's measurement service was an uncapped bandwidth source
// for anyone. It now advertises (and enforces) its public guard, while
// enrolled devices inside the tunnel have their own pool.
func TestPublicSpeedTestsHaveConservativeDefaults(t *testing.T) {
	_, base := startServer(t, DefaultConfig())
	code, body := call(t, "GET", base+measureserver.PathConfig, "", nil)
	require.Equal(t, http.StatusOK, code)
	var doc struct {
		Cap  float64 `json:"tether_rate_cap_mbps"`
		URLs struct {
			Large string `json:"large_download_url"`
		} `json:"urls"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	assert.Equal(t, measureserver.DefaultPublicLimits.MaxMbps, doc.Cap, "the public guard is on by default")
	assert.True(t, strings.HasPrefix(doc.URLs.Large, base), "URLs from the connection, not the Host header: %s", doc.URLs.Large)
}

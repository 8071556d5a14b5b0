package netdiag

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/report"
)

// liar serves a config document that points at handlers misbehaving in
// the given way.
func liar(t *testing.T, large, upload http.HandlerFunc) string {
	t.Helper()
	mux := http.NewServeMux()
	var base string
	mux.HandleFunc("GET /.well-known/nq", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"version":1,"urls":{"small_https_download_url":"` + base + `/small","large_https_download_url":"` + base + `/large","https_upload_url":"` + base + `/upload"}}`))
	})
	mux.HandleFunc("GET /small", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("x")) })
	mux.HandleFunc("GET /large", large)
	mux.HandleFunc("POST /upload", upload)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL
	return srv.URL
}

func runAgainst(t *testing.T, server string) (*report.Report, time.Duration) {
	t.Helper()
	c, err := New(Config{Server: server})
	require.NoError(t, err)
	start := time.Now()
	rep := c.Run(context.Background(), report.ModeFull)
	return rep, time.Since(start)
}

func errorsOf(r *report.Report) string {
	var b strings.Builder
	for _, e := range r.Errors {
		b.WriteString(e.Probe + ": " + e.Error + "\n")
	}
	return b.String()
}

func TestTruncatedBodiesAreReported(t *testing.T) {
	// /large promises 1 GB and stops after 1 MB, again and again.
	server := liar(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000000")
		_, _ = w.Write(make([]byte, 1<<20))
	}, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no uploads today", http.StatusServiceUnavailable)
	})
	rep, took := runAgainst(t, server)
	assert.Less(t, took, 11*time.Second)
	errs := errorsOf(rep)
	assert.Contains(t, errs, "download: download: GET "+server+"/large")
	assert.Contains(t, errs, "upload: upload: POST "+server+"/upload: server answered 503")
	require.NotNil(t, rep.Throughput)
	assert.False(t, rep.Throughput.Stable)
}

func TestASlowServerDoesNotHangTheRun(t *testing.T) {
	block := make(chan struct{})
	server := liar(t, func(w http.ResponseWriter, r *http.Request) {
		select { // never sends a byte
		case <-block:
		case <-r.Context().Done():
		}
	}, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(block) }) // before the server's Close, which waits for handlers
	rep, took := runAgainst(t, server)
	assert.Less(t, took, 11*time.Second, "the run's deadline holds")
	errs := errorsOf(rep)
	assert.Contains(t, errs, "no bytes moved")
	assert.Zero(t, rep.Throughput.DownloadMbps)
}

func TestBadConfigDocuments(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"version":1,"urls":{}}`, "lacks a URL"},
		{`not json`, "bad /.well-known/nq"},
		{`{"version":1,"urls":{"small_https_download_url":"ftp://x/s","large_https_download_url":"http://x/l","https_upload_url":"http://x/u"}}`, "bad URL"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tc.body)) }))
		c, err := New(Config{Server: srv.URL})
		require.NoError(t, err)
		err = c.fetchConfig(context.Background())
		srv.Close()
		assert.ErrorContains(t, err, tc.want)
	}
	_, err := New(Config{Server: "gw.example.com"})
	assert.ErrorContains(t, err, "http://")
}

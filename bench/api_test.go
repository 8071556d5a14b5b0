package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
)

func TestPercentile(t *testing.T) {
	v := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	assert.Equal(t, time.Duration(5), Percentile(v, 50))
	assert.Equal(t, time.Duration(9), Percentile(v, 90))
	assert.Equal(t, time.Duration(10), Percentile(v, 99))
	assert.Equal(t, time.Duration(1), Percentile(v, 0))
	assert.Zero(t, Percentile(nil, 50))
}

func TestRunAPICountsRequestsAndErrors(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every fifth request fails, and each takes at least 1 ms.
		time.Sleep(time.Millisecond)
		if n.Add(1)%5 == 0 {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	r, err := RunAPI(context.Background(), APIConfig{BaseURL: srv.URL, Concurrency: 2, Duration: 300 * time.Millisecond})
	require.NoError(t, err)
	total := r.Requests + r.Errors
	require.Positive(t, total)
	assert.InDelta(t, 0.2, float64(r.Errors)/float64(total), 0.05)
	assert.GreaterOrEqual(t, r.P50, time.Millisecond, "latency includes the handler's sleep")
	assert.Contains(t, r.FirstError, "503")
	assert.Contains(t, r.String(), "requests")
}

func TestRunAPIRefusesADeadTarget(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := RunAPI(context.Background(), APIConfig{BaseURL: url, Duration: 100 * time.Millisecond})
	assert.ErrorContains(t, err, "does not answer")
}

// TestDNSContenderConfig: the config our resolver runs with in the DNS
// benchmark is a gateway config that loads, with every local name.
func TestDNSContenderConfig(t *testing.T) {
	c := DNSConfig{Dir: t.TempDir(), LocalNames: 3}
	c.defaults()
	path := filepath.Join(c.Dir, "gateway.yaml")
	require.NoError(t, gateway.WriteConfig(path, c.gatewayConfig(5353, "/tmp/list")))
	got, err := gateway.LoadConfig(path)
	require.NoError(t, err)
	require.NotNil(t, got.DNS)
	assert.Equal(t, "127.0.0.1:5353", got.DNS.Listen)
	require.Len(t, got.DNS.LocalZones, 1)
	assert.Equal(t, []string{"host0 IN A 10.64.0.0", "host1 IN A 10.64.0.1", "host2 IN A 10.64.0.2"}, got.DNS.LocalZones[0].Records)
	assert.Equal(t, "/tmp/list", got.DNS.Lists[0].Path)
}

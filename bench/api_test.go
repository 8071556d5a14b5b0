package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

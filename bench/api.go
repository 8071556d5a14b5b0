package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// APIConfig is the API latency scenario: Concurrency clients request Path
// from the gateway back to back for Duration.
type APIConfig struct {
	// BaseURL is the gateway's API, e.g. http://127.0.0.1:8443.
	BaseURL string
	// Path is requested by every client; empty means /healthz.
	Path string
	// Concurrency is the number of clients; zero means 4.
	Concurrency int
	// Duration of the run; zero means 5 s.
	Duration time.Duration
}

// Report is a scenario's result. Latencies are per request.
type Report struct {
	Scenario    string        `json:"scenario"`
	Target      string        `json:"target"`
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"duration_ns"`
	Requests    int           `json:"requests"`
	Errors      int           `json:"errors"`
	PerSecond   float64       `json:"per_second"`
	P50         time.Duration `json:"p50_ns"`
	P90         time.Duration `json:"p90_ns"`
	P99         time.Duration `json:"p99_ns"`
	Max         time.Duration `json:"max_ns"`
	FirstError  string        `json:"first_error,omitempty"`
}

// String renders the report on one line per figure group.
func (r Report) String() string {
	return fmt.Sprintf("%s against %s: %d clients for %v\n  %d requests (%.0f/s), %d errors\n  latency p50 %v  p90 %v  p99 %v  max %v\n",
		r.Scenario, r.Target, r.Concurrency, r.Duration.Round(time.Millisecond), r.Requests, r.PerSecond, r.Errors,
		r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
}

// RunAPI runs the API latency scenario.
func RunAPI(ctx context.Context, cfg APIConfig) (Report, error) {
	if cfg.BaseURL == "" {
		return Report{}, errors.New("bench: no gateway URL")
	}
	if cfg.Path == "" {
		cfg.Path = "/healthz"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	url := cfg.BaseURL + cfg.Path
	// One warm-up request proves the target answers before load starts.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}}
	defer hc.CloseIdleConnections()
	if err := get(ctx, hc, url); err != nil {
		return Report{}, fmt.Errorf("bench: %s does not answer: %w", url, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		nerr     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				err := get(ctx, hc, url)
				d := time.Since(t0)
				if ctx.Err() != nil {
					break // the request was cut by the end of the run
				}
				if err != nil {
					mu.Lock()
					nerr++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	r := Report{Scenario: "api", Target: url, Concurrency: cfg.Concurrency, Duration: elapsed,
		Requests: len(lat), Errors: nerr, PerSecond: float64(len(lat)) / elapsed.Seconds(),
		P50: Percentile(lat, 50), P90: Percentile(lat, 90), P99: Percentile(lat, 99)}
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	return r, nil
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// Percentile returns the p-th percentile (nearest rank) of sorted values,
// or zero when there are none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

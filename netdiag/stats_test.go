package netdiag

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/report"
)

func msd(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, f := range v {
		out[i] = time.Duration(f * float64(time.Millisecond))
	}
	return out
}

func TestSummarize(t *testing.T) {
	st := Summarize(msd(10, 12, 11, 30, 10), 6)
	// Jitter: |12-10|+|11-12|+|30-11|+|10-30| = 42 over 4 gaps.
	assert.Equal(t, report.LatencyStats{MinMS: 10, MedianMS: 11, P90MS: 30, JitterMS: 10.5, LossPct: 16.67, Samples: 5, Sent: 6}, st)

	even := Summarize(msd(1, 2, 3, 4), 4)
	assert.Equal(t, 2.5, even.MedianMS, "even counts take the mean of the middle two")
	assert.Zero(t, even.LossPct)

	none := Summarize(nil, 10)
	assert.Equal(t, 100.0, none.LossPct)
	assert.Zero(t, none.MedianMS)
	assert.Zero(t, Summarize(nil, 0).LossPct, "nothing sent is not loss")
}

func TestTrimmedMeanDropsTheSlowTail(t *testing.T) {
	v := msd(10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 1000)
	assert.Equal(t, 10*time.Millisecond, trimmedMean(v, 95))
	assert.Equal(t, time.Duration(0), trimmedMean(nil, 95))
}

func TestBufferbloatGrade(t *testing.T) {
	for _, tc := range []struct {
		inc  float64
		want string
	}{{0, "A+"}, {4.9, "A+"}, {5, "A"}, {29.9, "A"}, {30, "B"}, {59, "B"}, {60, "C"}, {199, "C"}, {200, "D"}, {399, "D"}, {400, "F"}, {5000, "F"}} {
		assert.Equal(t, tc.want, BufferbloatGrade(msd(tc.inc)[0]), "%v ms", tc.inc)
	}
	assert.Less(t, gradeRank("A+"), gradeRank("A"))
	assert.Less(t, gradeRank("D"), gradeRank("F"))
	th := defaultThresholds()
	assert.Equal(t, 60.0, th.BufferbloatGradesMS["B"], "reports carry the thresholds they used")
}

func TestRPM(t *testing.T) {
	ms := func(n float64) time.Duration { return msd(n)[0] }
	tls := func(tcp, tls, http float64) foreignSample { return foreignSample{ms(tcp), ms(tls), ms(http)} }
	// The draft's weights: 1/6 each for the foreign TCP, TLS and HTTP
	// times, 1/2 for the self probes. 60, 90 and 150 ms foreign (a mean
	// of 100) and 50 ms self: 75 ms, 800 round trips a minute.
	r := rpm([]foreignSample{tls(60, 90, 150), tls(60, 90, 150)}, msd(50, 50))
	assert.Equal(t, 800, r.rpm)
	assert.Equal(t, ms(90), r.tls)
	// Plain HTTP: no TLS term, TCP and HTTP share the foreign half.
	assert.Equal(t, 800, rpm([]foreignSample{tls(50, 0, 150)}, msd(50)).rpm)
	assert.Equal(t, 600, rpm([]foreignSample{tls(60, 90, 150)}, nil).rpm, "foreign probes alone without h2")
	assert.Equal(t, 1200, rpm(nil, msd(50)).rpm, "self probes alone")
	assert.Zero(t, rpm(nil, nil).rpm)
	// The trimmed mean keeps the fastest 95%: one stalled self probe in
	// twenty does not count.
	self := msd(50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 3000)
	assert.Equal(t, ms(50), rpm(nil, self).self)
}

func TestGoodputAndStability(t *testing.T) {
	t0 := time.Unix(0, 0)
	var s []sample
	for i := 0; i <= 30; i++ { // 10 Mbit/s: 125 kB per 100 ms
		s = append(s, sample{t0.Add(time.Duration(i) * 100 * time.Millisecond), int64(i) * 125_000})
	}
	assert.InDelta(t, 10e6, goodput(s, time.Second), 1)
	assert.InDelta(t, 10e6, goodput(s[:3], time.Second), 1, "short series use what they have")
	assert.True(t, isStable([]float64{10, 10.2, 9.9}))
	assert.False(t, isStable([]float64{10, 10.2}), "too few checks")
	assert.False(t, isStable([]float64{8, 10, 12}))
	assert.False(t, isStable([]float64{0, 0, 0}), "nothing moving is not stable")
}

func TestParseRoutes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "route")
	require.NoError(t, os.WriteFile(p, []byte(
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"+
			"eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"+
			"eth0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"), 0o600))
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	gw, err := parseRoutes(f)
	require.NoError(t, err)
	assert.Equal(t, "192.168.77.1", gw.String())
}

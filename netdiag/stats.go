package netdiag

import (
	"slices"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// Summarize computes latency statistics from the answered round trips, in
// the order they were sent, out of sent probes.
//
// Jitter is the mean absolute difference between consecutive round trips
// (the "instantaneous packet delay variation" of RFC 5481, section 1.2,
// averaged), which is what VoIP and conferencing tools report.
func Summarize(rtts []time.Duration, sent int) report.LatencyStats {
	st := report.LatencyStats{Samples: len(rtts), Sent: sent}
	if sent > 0 {
		st.LossPct = round2(float64(sent-len(rtts)) / float64(sent) * 100)
	}
	if len(rtts) == 0 {
		return st
	}
	var jit time.Duration
	for i := 1; i < len(rtts); i++ {
		d := rtts[i] - rtts[i-1]
		if d < 0 {
			d = -d
		}
		jit += d
	}
	if len(rtts) > 1 {
		st.JitterMS = ms(jit / time.Duration(len(rtts)-1))
	}
	sorted := slices.Clone(rtts)
	slices.Sort(sorted)
	st.MinMS = ms(sorted[0])
	st.MedianMS = ms(median(sorted))
	st.P90MS = ms(percentile(sorted, 90))
	return st
}

// median of sorted values (the mean of the middle two for an even count).
func median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// trimmedMean drops the slowest (100-keepPct)% of samples and averages the
// rest: the draft's TM(), which keeps one stalled probe from dominating.
func trimmedMean(samples []time.Duration, keepPct float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	n := max(1, int(float64(len(sorted))*keepPct/100))
	var sum time.Duration
	for _, d := range sorted[:n] {
		sum += d
	}
	return sum / time.Duration(n)
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

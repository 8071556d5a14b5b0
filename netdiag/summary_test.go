package netdiag

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tetherwfh/tether/netdiag/report"
)

func TestSummarySentences(t *testing.T) {
	gw := func(median, loss float64) report.LatencyTarget {
		return report.LatencyTarget{Name: "gateway", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MedianMS: median, LossPct: loss}}
	}
	for _, tc := range []struct {
		name string
		rep  report.Report
		want string
	}{
		{"unreachable", report.Report{Latency: report.LatencyReport{Targets: []report.LatencyTarget{{Name: "gateway", Method: report.MethodNone}}}},
			"Tether could not reach the company gateway"},
		{"healthy", report.Report{Mode: report.ModeFull, Latency: report.LatencyReport{Targets: []report.LatencyTarget{gw(12, 0)}},
			Throughput:     &report.ThroughputReport{DownloadMbps: 95.4, UploadMbps: 8.2},
			Responsiveness: &report.ResponsivenessReport{BufferbloatGrade: "A", IncreaseMS: 9}},
			"Your line looks healthy: 95 Mbit/s down, 8.2 Mbit/s up, 12 ms to the company gateway, and delay stays low under load (grade A)."},
		{"bloated", report.Report{Mode: report.ModeFull, Latency: report.LatencyReport{Targets: []report.LatencyTarget{gw(12, 0)}},
			Responsiveness: &report.ResponsivenessReport{BufferbloatGrade: "D", IncreaseMS: 250}},
			"delay rises by 250 ms when the line is busy (bufferbloat grade D)"},
		{"B is not a problem", report.Report{Mode: report.ModeFull, Latency: report.LatencyReport{Targets: []report.LatencyTarget{gw(12, 0)}},
			Responsiveness: &report.ResponsivenessReport{BufferbloatGrade: "B", IncreaseMS: 45}},
			"Your line looks healthy"},
		{"lossy and far", report.Report{Mode: report.ModeQuick, Latency: report.LatencyReport{Targets: []report.LatencyTarget{gw(180, 5)}}},
			"5% of packets to the company gateway are lost, which makes calls choppy; and the company gateway is 180 ms away"},
		{"quick", report.Report{Mode: report.ModeQuick, Latency: report.LatencyReport{Targets: []report.LatencyTarget{gw(20, 0)}}},
			"Quick check: the company gateway answers in 20 ms"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Contains(t, summarize(&tc.rep), tc.want) })
	}
}

// TestSummaryOfABloatedLineWithRoomToSpare: issue 13's 37/9 Mbit/s line
// with a 250 ms queue and nothing else on it leads with its bufferbloat,
// not with "cannot carry a video call".
func TestSummaryOfABloatedLineWithRoomToSpare(t *testing.T) {
	r := healthy()
	bloated379(r)
	r.Verdicts, r.Suggestions = judge(r, false)
	s := summarize(r)
	assert.NotContains(t, s, "cannot carry a video call")
	assert.True(t, strings.HasPrefix(s, "Delay rises by 250 ms when the line is busy"), s)
}

// TestQuickSummaryWhenTheServiceIsDown: the host's pings do not make the
// gateway answer.
func TestQuickSummaryWhenTheServiceIsDown(t *testing.T) {
	r := &report.Report{Mode: report.ModeQuick,
		Latency: report.LatencyReport{Targets: []report.LatencyTarget{{Name: "gateway", Addr: "127.0.0.1", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MedianMS: 0.08, Sent: 10, Samples: 10}}}},
		Service: &report.ServiceReport{URL: "https://127.0.0.1:8443/healthz", Port: 8443, Error: "connection refused"}}
	r.Verdicts, r.Suggestions = judge(r, false)
	assert.Equal(t, "The gateway host answers (0.1 ms) but its service on :8443 does not (connection refused).", summarize(r))
	r.Service = &report.ServiceReport{URL: "https://127.0.0.1:8443/healthz", Port: 8443, Answers: true, Status: 200}
	r.Verdicts, r.Suggestions = judge(r, false)
	assert.Contains(t, summarize(r), "Quick check: the company gateway answers")
}

package netdiag

import (
	"fmt"
	"strings"

	"github.com/tetherwfh/tether/netdiag/report"
)

// slowIdleMS limits the summary sentence alone (loss and bufferbloat use
// the verdicts' limits, highLossPct and bufferbloatGrade): a gateway
// further than 100 ms away makes interactive work feel sluggish (ITU-T
// G.114 recommends under 150 ms one way for voice; 100 ms round trip is
// the comfortable bound for typing).
const slowIdleMS = 100.0

// summarize writes the report's one plain sentence: the most severe
// verdict's, when there is a problem, else how the line is doing.
func summarize(r *report.Report) string {
	var findings []report.Verdict
	for _, v := range r.Verdicts {
		if v.Severity.Rank() >= report.SeverityWarning.Rank() {
			findings = append(findings, v)
		}
	}
	if len(findings) > 0 {
		s := findings[0].Summary
		if more := len(findings) - 1; more == 1 {
			s += " (1 more finding below.)"
		} else if more > 1 {
			s += fmt.Sprintf(" (%d more findings below.)", more)
		}
		return s
	}
	var gw *report.LatencyTarget
	for i := range r.Latency.Targets {
		if r.Latency.Targets[i].Name == "gateway" {
			gw = &r.Latency.Targets[i]
		}
	}
	if gw == nil || gw.Method == report.MethodNone {
		return "Tether could not reach the company gateway, so the line could not be measured; check that you are online and see the errors below."
	}
	var problems []string
	if gw.LossPct > highLossPct {
		problems = append(problems, fmt.Sprintf("%.0f%% of packets to the company gateway are lost, which makes calls choppy", gw.LossPct))
	}
	if gw.MedianMS > slowIdleMS {
		problems = append(problems, fmt.Sprintf("the company gateway is %.0f ms away even when the line is idle", gw.MedianMS))
	}
	resp := r.Responsiveness
	if resp != nil && resp.BufferbloatGrade != "" && gradeRank(resp.BufferbloatGrade) >= gradeRank(bufferbloatGrade) {
		problems = append(problems, fmt.Sprintf("delay rises by %.0f ms when the line is busy (bufferbloat grade %s), so calls stutter while anyone uploads or downloads", resp.IncreaseMS, resp.BufferbloatGrade))
	}
	var speeds string
	if tp := r.Throughput; tp != nil && (tp.DownloadMbps > 0 || tp.UploadMbps > 0) {
		speeds = fmt.Sprintf("%s down, %s up, ", mbps(tp.DownloadMbps), mbps(tp.UploadMbps))
	}
	if len(problems) > 0 {
		return "Your line has a problem: " + strings.Join(problems, "; and ") + "."
	}
	if r.Mode == report.ModeQuick {
		return fmt.Sprintf("Quick check: the company gateway answers in %s with no notable loss; run without --quick to test speed and behaviour under load.", msText(gw.MedianMS))
	}
	grade := ""
	if resp != nil && resp.BufferbloatGrade != "" {
		grade = fmt.Sprintf(", and delay stays low under load (grade %s)", resp.BufferbloatGrade)
	}
	return fmt.Sprintf("Your line looks healthy: %s%s to the company gateway%s.", speeds, msText(gw.MedianMS), grade)
}

// msText writes a latency for a person: whole milliseconds, with a
// decimal below 10 ms, and "under 1 ms" rather than a misleading 0.
func msText(v float64) string {
	switch {
	case v < 1:
		return "under 1 ms"
	case v < 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func mbps(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f Mbit/s", v)
	}
	return fmt.Sprintf("%.0f Mbit/s", v)
}

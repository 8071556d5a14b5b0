package netdiag

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/report"
)

func TestCompareTunnel(t *testing.T) {
	leg := func(idle, inc, down, up float64) report.PathResult {
		return report.PathResult{Server: "x", IdleMS: idle, IncreaseMS: inc, DownloadMbps: down, UploadMbps: up}
	}
	for _, tc := range []struct {
		name       string
		d, t       report.PathResult
		bottleneck string
		says       string
	}{
		{"a clean tunnel on a good line", leg(12, 8, 300, 50), leg(13, 10, 280, 47), report.BottleneckNone, "costs little"},
		{"a bloated line, the tunnel adds nothing", leg(12, 310, 15, 0.9), leg(13, 318, 14, 0.85), report.BottleneckLine, "your home line's"},
		{"a slow line without bloat", leg(12, 20, 8, 1), leg(13, 25, 7.6, 0.95), report.BottleneckLine, "your home line's"},
		{"a queue at the gateway's tunnel", leg(12, 15, 300, 50), leg(14, 240, 4.8, 4.7), report.BottleneckTunnel, "the tunnel's and the company gateway's"},
		{"just over the latency limit", leg(10, 10, 100, 20), leg(10, 61, 100, 20), report.BottleneckTunnel, "tunnel's"},
		{"just under it", leg(10, 10, 100, 20), leg(10, 59, 100, 20), report.BottleneckNone, "costs little"},
		{"throughput halved, latency fine", leg(10, 10, 100, 20), leg(10, 20, 40, 20), report.BottleneckTunnel, "tunnel's"},
		{"upload halved on a fast line", leg(10, 10, 100, 20), leg(10, 20, 95, 8), report.BottleneckTunnel, "tunnel's"},
		{"ratio ignored on a line under 1 Mbit/s up", leg(10, 10, 100, 0.5), leg(10, 20, 95, 0.2), report.BottleneckLine, "your home line's"},
		{"the tunnel leg failed", leg(10, 10, 100, 20), report.PathResult{Server: "x", Error: "download: EOF"}, report.BottleneckUnknown, "through the tunnel, download: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compareTunnel(tc.d, tc.t)
			assert.Equal(t, tc.bottleneck, c.Bottleneck, c.Summary)
			assert.Contains(t, c.Summary, tc.says)
			if tc.bottleneck != report.BottleneckUnknown {
				assert.InDelta(t, tc.t.LoadedMS()-tc.d.LoadedMS(), c.OverheadMS, 1e-9)
			}
			// The verdict fires exactly when the tunnel is the bottleneck.
			rep := &report.Report{Tunnel: c}
			vs, sugg := judge(rep, false)
			var ids []report.VerdictID
			for _, v := range vs {
				ids = append(ids, v.ID)
			}
			if tc.bottleneck == report.BottleneckTunnel {
				require.Contains(t, ids, report.VerdictTunnelOverheadHigh)
				assert.Contains(t, sugg, report.Suggestion{ID: report.SuggestionContactHelpdesk, Because: []report.VerdictID{report.VerdictTunnelOverheadHigh},
					Summary: sugg[len(sugg)-1].Summary})
			} else {
				assert.NotContains(t, ids, report.VerdictTunnelOverheadHigh)
			}
		})
	}
}

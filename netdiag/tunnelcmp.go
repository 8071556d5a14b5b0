package netdiag

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// tunnel_overhead_high's limits.
const (
	// tunnelOverheadMS: WireGuard adds a few milliseconds (encryption and
	// one hop inside the gateway). 50 ms more under load than the direct
	// path is a queue of the tunnel's own (the gateway's uplink or CPU, a
	// shaper on its port): the step between two bufferbloat grades, and
	// what CompareUplinks counts as a gain worth switching for.
	tunnelOverheadMS = switchGainMS
	// tunnelThroughputRatio: WireGuard's 60 to 80 bytes a packet cost
	// about 5% of the goodput; under half the direct path's is not
	// overhead but a bottleneck.
	tunnelThroughputRatio = 0.5
	// tunnelRatioMinMbps: below it in a direction the direct path is too
	// slow for a ratio to mean much (the line is the bottleneck).
	tunnelRatioMinMbps = 1.0
)

// CompareTunnel measures the path to the gateway twice in one run: with
// direct (its public API, beside the tunnel: the host's sockets, or
// marked ones with Config.Mark when a TUN tunnel is up), then with
// tunnel (its tunnel address, through the tunnel's Dial). It returns the
// tunnel leg's report, since the tunnel is what is in use, with the
// comparison in report.Tunnel and its verdict, tunnel_overhead_high,
// when the tunnel costs much more than the line.
func CompareTunnel(ctx context.Context, direct, tunnel Config) (*report.Report, error) {
	if tunnel.Dial == nil {
		return nil, errors.New("netdiag: comparing the tunnel needs its Dial")
	}
	dc, err := New(direct)
	if err != nil {
		return nil, fmt.Errorf("netdiag: the direct leg: %w", err)
	}
	tc, err := New(tunnel)
	if err != nil {
		return nil, fmt.Errorf("netdiag: the tunnel leg: %w", err)
	}
	dRep := dc.Run(ctx, report.ModeFull)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	idle := time.Duration(0)
	if rs := dRep.Responsiveness; rs != nil {
		idle = time.Duration(rs.IdleMS * float64(time.Millisecond))
	}
	tc.settle(ctx, idle)
	tRep := tc.Run(ctx, report.ModeFull)
	tRep.Tunnel = compareTunnel(pathResult(dRep), pathResult(tRep))
	tRep.Verdicts, tRep.Suggestions = judge(tRep, tunnel.DNS.ExpectFiltered)
	tRep.Summary = summarize(tRep)
	tRep.DurationMS += dRep.DurationMS
	return tRep, nil
}

// Settling between the legs: what the first leg's load left in the
// line's queues (aborted connections send nothing more, but packets
// already queued in a modem still drain, up to its buffer's depth) must
// not read as the second leg's idle latency. settleProbes in a row near
// the first leg's idle RTT (within settleSlack, or half again) end the
// wait; settleMax bounds it, for a tunnel whose idle RTT is simply
// higher.
const (
	settleProbes = 3
	settleEvery  = 100 * time.Millisecond
	settleSlack  = 5 * time.Millisecond
	settleMax    = 3 * time.Second
)

// settle waits until the gateway answers near idle again, or settleMax.
func (c *Client) settle(ctx context.Context, idle time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, settleMax)
	defer cancel()
	t, err := c.gatewayTarget(ctx)
	if err != nil {
		return
	}
	limit := idle + max(settleSlack, idle/2)
	for near := 0; near < settleProbes && ctx.Err() == nil; {
		if s, err := c.prober.Probe(ctx, t); err == nil && s.RTT <= limit {
			near++
		} else {
			near = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(settleEvery):
		}
	}
}

// pathResult is a run's figures for a comparison (of uplinks, or of the
// paths beside and through the tunnel).
func pathResult(rep *report.Report) report.PathResult {
	r := report.PathResult{Server: rep.Server}
	if rs := rep.Responsiveness; rs != nil {
		r.IdleMS, r.IncreaseMS, r.RPM = rs.IdleMS, rs.IncreaseMS, rs.RPM
	}
	if tp := rep.Throughput; tp != nil {
		r.DownloadMbps, r.UploadMbps = tp.DownloadMbps, tp.UploadMbps
	}
	if r.DownloadMbps == 0 && r.UploadMbps == 0 {
		r.Error = "could not be measured"
		for _, e := range rep.Errors {
			r.Error = e.Probe + ": " + e.Error
			break
		}
	}
	return r
}

// compareTunnel says whose a slowdown is. It is pure: a table test
// drives it.
func compareTunnel(d, t report.PathResult) *report.TunnelReport {
	c := &report.TunnelReport{Direct: d, Tunnel: t, Bottleneck: report.BottleneckUnknown}
	if d.Error != "" || t.Error != "" {
		c.Summary = "The tunnel could not be compared with the line: "
		if d.Error != "" {
			c.Summary += "direct, " + d.Error
		} else {
			c.Summary += "through the tunnel, " + t.Error
		}
		c.Summary += "."
		return c
	}
	c.OverheadMS = t.LoadedMS() - d.LoadedMS()
	if d.DownloadMbps > 0 {
		c.DownRatio = t.DownloadMbps / d.DownloadMbps
	}
	if d.UploadMbps > 0 {
		c.UpRatio = t.UploadMbps / d.UploadMbps
	}
	slowDown := d.DownloadMbps >= tunnelRatioMinMbps && c.DownRatio < tunnelThroughputRatio
	slowUp := d.UploadMbps >= tunnelRatioMinMbps && c.UpRatio < tunnelThroughputRatio
	figures := fmt.Sprintf("under load %.0f ms through the tunnel against %.0f ms direct; %s against %s down, %s against %s up",
		t.LoadedMS(), d.LoadedMS(), mbps(t.DownloadMbps), mbps(d.DownloadMbps), mbps(t.UploadMbps), mbps(d.UploadMbps))
	switch {
	case c.OverheadMS > tunnelOverheadMS || slowDown || slowUp:
		c.Bottleneck = report.BottleneckTunnel
		c.Summary = "The slowdown is the tunnel's and the company gateway's, not your home line's: " + figures + "."
	case gradeRank(BufferbloatGrade(time.Duration(d.IncreaseMS*float64(time.Millisecond)))) >= gradeRank(bufferbloatGrade),
		d.DownloadMbps < slowDownMbps || d.UploadMbps < slowUpMbps:
		c.Bottleneck = report.BottleneckLine
		c.Summary = fmt.Sprintf("The slowdown is your home line's, not the tunnel's: direct to the gateway, latency rises by %.0f ms under load; the tunnel adds %s (%s).",
			d.IncreaseMS, overheadWords(c.OverheadMS), figures)
	default:
		c.Bottleneck = report.BottleneckNone
		c.Summary = fmt.Sprintf("The tunnel costs little: it adds %s under load and carries %.0f%% of the direct path's download and %.0f%% of its upload.",
			overheadWords(c.OverheadMS), 100*c.DownRatio, 100*c.UpRatio)
	}
	return c
}

func overheadWords(ms float64) string {
	if ms <= 0 {
		return "no latency"
	}
	return fmt.Sprintf("%.0f ms", ms)
}

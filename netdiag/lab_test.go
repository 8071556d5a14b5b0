package netdiag_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/netdiagtest"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// measurePort is where the lab gateway serves the measurement service.
const measurePort = 8443

// startMeasurement runs the measurement service (HTTP with h2c, and a STAMP
// reflector) in the lab's gateway namespace, as tether-gateway does for
// its enrolled devices: netdiagtest's default, the trusted pool, since the
// public pool's guard would cap the fiber profile at 100 Mbit/s, and the
// lab measures the line, not the gateway's defence against outsiders.
func startMeasurement(tb testing.TB, l *netlab.Lab) string {
	tb.Helper()
	return netdiagtest.New(tb, netdiagtest.Options{
		Listen: func() (net.Listener, error) {
			return l.Gateway.Listen("tcp", netip.AddrPortFrom(netlab.GatewayAddr, measurePort).String())
		},
		ListenPacket: func() (net.PacketConn, error) {
			return l.Gateway.ListenPacket("udp", netip.AddrPortFrom(netlab.GatewayAddr, stamp.DefaultPort).String())
		},
	}).URL
}

func labClient(tb testing.TB, l *netlab.Lab, server string) *netdiag.Client {
	tb.Helper()
	// The lab's DNS knows its own names only: example.com, the default
	// probe name, does not resolve there.
	c, err := netdiag.New(netdiag.Config{Server: server, Netns: l.Home.Do,
		DNS: netdiag.DNSConfig{ResolvConf: l.ResolvConf(), ProbeName: netlab.WebName, TestDomain: "internet.test."}})
	require.NoError(tb, err)
	return c
}

func target(r *report.Report, name string) report.LatencyTarget {
	for _, t := range r.Latency.Targets {
		if t.Name == name {
			return t
		}
	}
	return report.LatencyTarget{}
}

// TestDiagOnLabProfiles runs a full diagnosis on shaped lines and checks
// the figures against the shaping and against iperf3 on the same lab,
// with CI-stable bounds (the accuracy benchmark holds the tight ones).
func TestDiagOnLabProfiles(t *testing.T) {
	for _, tc := range []struct {
		profile    string
		worstGrade string // the grade must be this or better...
		bestGrade  string // ...and this or worse
	}{
		{"fiber", "A", "A+"},
		{"cable_bloated", "F", "C"},
		{"dsl_bloated", "F", "C"},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			p := netlab.Profiles[tc.profile]
			l := netlab.New(t, p)
			server := startMeasurement(t, l)
			rep := labClient(t, l, server).Run(context.Background(), report.ModeFull)
			t.Logf("%s: %s", tc.profile, oneLine(rep))
			require.Empty(t, rep.Errors)
			assert.LessOrEqual(t, rep.DurationMS, int64(11_000), "a full run stays near its 10 s budget")

			gw := target(rep, "gateway")
			assert.Equal(t, report.MethodICMP, gw.Method, "root in the lab can ping")
			assert.Zero(t, gw.LossPct)
			router := target(rep, "router")
			assert.Equal(t, netlab.HomeRouterAddr.String(), router.Addr, "the router comes from the home's routing table")

			// Goodput against the shaping and against iperf3 over the same
			// path in the same lab: never above the set rate (+5% for
			// timing), and at least 80% of what iperf3 gets, so a slow CI
			// core that slows both doesn't fail us but a slow probe does.
			tp := rep.Throughput
			require.NotNil(t, tp)
			ictx, icancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer icancel()
			isrv, err := l.StartIperf3(ictx)
			require.NoError(t, err)
			for _, d := range []struct {
				name    string
				got     float64
				set     netlab.Rate
				reverse bool
			}{{"download", tp.DownloadMbps, p.Down.Rate, true}, {"upload", tp.UploadMbps, p.Up.Rate, false}} {
				set := float64(d.set) / 1e6
				base, err := l.Iperf3(ictx, l.Home, isrv, d.reverse, 1, 3*time.Second)
				require.NoError(t, err)
				t.Logf("%s: tether %.1f Mbit/s, iperf3 %.1f Mbit/s (%.0f%%), set %.0f", d.name, d.got, base.Mbps, 100*d.got/base.Mbps, set)
				assert.LessOrEqual(t, d.got, set*1.05, "%s Mbit/s against a %v Mbit/s line", d.name, set)
				assert.GreaterOrEqual(t, d.got, 0.80*base.Mbps, "%s Mbit/s against iperf3's %.1f on the same path", d.name, base.Mbps)
			}
			rs := rep.Responsiveness
			require.NotNil(t, rs)
			assert.Positive(t, rs.RPM)
			assert.Positive(t, rs.ForeignProbes)
			assert.Positive(t, rs.SelfProbes, "h2c lets probes ride the loaded connections")
			assert.GreaterOrEqual(t, gradeRankOf(rs.BufferbloatGrade), gradeRankOf(tc.bestGrade), "grade %s", rs.BufferbloatGrade)
			assert.LessOrEqual(t, gradeRankOf(rs.BufferbloatGrade), gradeRankOf(tc.worstGrade), "grade %s", rs.BufferbloatGrade)
			assert.NotEmpty(t, rep.Summary)
		})
	}
}

func TestQuickDiagIsQuick(t *testing.T) {
	l := netlab.New(t, netlab.Profiles["cable_bloated"])
	server := startMeasurement(t, l)
	start := time.Now()
	rep := labClient(t, l, server).Run(context.Background(), report.ModeQuick)
	took := time.Since(start)
	t.Logf("quick: %v: %s", took, oneLine(rep))
	assert.Less(t, took, 2500*time.Millisecond)
	assert.Nil(t, rep.Throughput)
	assert.Equal(t, report.MethodICMP, target(rep, "gateway").Method)
	assert.Contains(t, rep.Summary, "Quick check")
}

// TestDiagFallsBackWhenICMPIsBlocked drops ICMP at the ISP: latency must
// come from STAMP, and say so.
func TestDiagFallsBackWhenICMPIsBlocked(t *testing.T) {
	l := netlab.New(t, netlab.Profiles["fiber"])
	server := startMeasurement(t, l)
	out, err := l.ISP.Command(context.Background(), "nft", "add rule ip tetherlab forward ip protocol icmp drop").CombinedOutput()
	require.NoError(t, err, "%s", out)
	rep := labClient(t, l, server).Run(context.Background(), report.ModeQuick)
	gw := target(rep, "gateway")
	assert.Equal(t, report.MethodSTAMP, gw.Method, "report: %+v", gw)
	assert.Equal(t, 10, gw.Samples)
}

// TestDiagReportsADeadServer: nothing listens at the server; the run ends
// within its budget with errors that say what failed.
func TestDiagReportsADeadServer(t *testing.T) {
	l := netlab.New(t, netlab.Profiles["fiber"])
	start := time.Now()
	rep := labClient(t, l, fmt.Sprintf("http://%s:%d", netlab.GatewayAddr, measurePort)).Run(context.Background(), report.ModeFull)
	assert.Less(t, time.Since(start), 11*time.Second)
	require.NotEmpty(t, rep.Errors)
	assert.Contains(t, rep.Errors[len(rep.Errors)-1].Error, "unreachable")
	assert.Nil(t, rep.Throughput)
	assert.Equal(t, report.MethodICMP, target(rep, "gateway").Method, "the host still answers pings")
}

func gradeRankOf(g string) int {
	return strings.Index("A+ A  B  C  D  F  ", g+" ") / 3
}

func oneLine(r *report.Report) string {
	s := fmt.Sprintf("%d ms", r.DurationMS)
	if tp := r.Throughput; tp != nil {
		s += fmt.Sprintf(", down %.2f up %.2f Mbit/s (%d streams, stable %v)", tp.DownloadMbps, tp.UploadMbps, tp.Streams, tp.Stable)
		for _, d := range []*report.DirectionReport{tp.Download, tp.Upload} {
			if d != nil {
				s += fmt.Sprintf(" [%.2f Mbit/s %d streams %d ms stable %v]", d.Mbps, d.Streams, d.DurationMS, d.Stable)
			}
		}
	}
	if rs := r.Responsiveness; rs != nil {
		s += fmt.Sprintf(", idle %.2f ms, loaded %.1f/%.1f ms, grade %s, %d RPM", rs.IdleMS, rs.LoadedDownMS, rs.LoadedUpMS, rs.BufferbloatGrade, rs.RPM)
	}
	for _, e := range r.Errors {
		s += fmt.Sprintf("; error %s: %s", e.Probe, e.Error)
	}
	return s
}

package netdiag_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag/report"
)

// BenchEnv enables BenchmarkLabAccuracy, which builds labs and takes about
// 30 s per profile: `make bench` sets it.
const BenchEnv = "TETHER_BENCH_LAB"

// accuracyProfiles span the rates from 1 to 500 Mbit/s.
var accuracyProfiles = []string{"fiber", "cable_bloated", "dsl_bloated"}

// BenchmarkLabAccuracy measures each profile two ways in the same lab: with
// iperf3 and ping, and with a full Tether diagnosis, and prints a table:
// set rate, iperf3, Tether, error, idle and loaded RTT, grade, wall time.
func BenchmarkLabAccuracy(b *testing.B) {
	if os.Getenv(BenchEnv) != "1" {
		b.Skipf("set %s=1 to run the lab accuracy benchmark (about 30 s a profile)", BenchEnv)
	}
	var rows []string
	for _, name := range accuracyProfiles {
		p := netlab.Profiles[name]
		l := netlab.New(b, p)
		server := startMeasurement(b, l)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		srv, err := l.StartIperf3(ctx)
		require.NoError(b, err)
		var iperf [2]float64
		for i, reverse := range []bool{true, false} {
			link := p.Up
			if reverse {
				link = p.Down
			}
			d := 5 * time.Second
			if link.Rate < 10*netlab.Mbps {
				d = 8 * time.Second
			}
			res, err := l.Iperf3(ctx, l.Home, srv, reverse, 4, d)
			require.NoError(b, err)
			iperf[i] = res.Mbps
		}
		pingMedian, err := pingMedianMS(ctx, l)
		require.NoError(b, err)
		cancel()

		var rep *report.Report
		b.ResetTimer()
		for range b.N {
			rep = labClient(b, l, server).Run(context.Background(), report.ModeFull)
		}
		b.StopTimer()
		require.Empty(b, rep.Errors, "%s: %v", name, rep.Errors)
		gw := target(rep, "gateway")
		rs := rep.Responsiveness
		for i, dir := range []struct {
			name string
			set  netlab.Rate
			got  float64
		}{{"down", p.Down.Rate, rep.Throughput.DownloadMbps}, {"up", p.Up.Rate, rep.Throughput.UploadMbps}} {
			errPct := (dir.got - iperf[i]) / iperf[i] * 100
			loaded := rs.LoadedDownMS
			if dir.name == "up" {
				loaded = rs.LoadedUpMS
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | %.1f | %.2f | %.2f | %+.1f%% | %.2f / %.2f | %.1f | %s | %.1f s |",
				name, dir.name, float64(dir.set)/1e6, iperf[i], dir.got, errPct, pingMedian, gw.MedianMS, loaded, rs.BufferbloatGrade, float64(rep.DurationMS)/1000))
			b.ReportMetric(errPct, name+"-"+dir.name+"-err%")
		}
		b.ReportMetric(gw.MedianMS-pingMedian, name+"-idle-diff-ms")
	}
	table := "| profile | dir | set Mbit/s | iperf3 (4 streams) | Tether | error vs iperf3 | idle RTT ping / Tether ms | loaded RTT ms | grade | Tether wall time |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(rows, "\n")
	fmt.Println(table)
	if f := os.Getenv("TETHER_BENCH_TABLE"); f != "" {
		_ = os.WriteFile(f, []byte(table+"\n"), 0o644)
	}
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// pingMedianMS is the median of ten pings from home to the gateway, with
// the system's ping.
func pingMedianMS(ctx context.Context, l *netlab.Lab) (float64, error) {
	out, err := l.Home.Run(ctx, "ping", "-n", "-c", "10", "-i", "0.1", netlab.GatewayAddr.String())
	if err != nil {
		return 0, err
	}
	var v []float64
	for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
		f, _ := strconv.ParseFloat(m[1], 64)
		v = append(v, f)
	}
	if len(v) == 0 {
		return 0, fmt.Errorf("no ping replies: %s", out)
	}
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2, nil
	}
	return v[len(v)/2], nil
}

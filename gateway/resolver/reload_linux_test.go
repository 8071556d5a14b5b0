package resolver

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func procStatusKB(tb testing.TB, field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(tb, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseFloat(f[0], 64)
			return kb
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// BenchmarkReloadPeak loads a 1M-entry list, then reloads it while the
// old set stays live, and reports the process's peak RSS during the
// reload against its steady RSS before it (Linux: VmHWM after resetting
// it through /proc/self/clear_refs).
func BenchmarkReloadPeak(b *testing.B) {
	list := synthList(b, 1_000_000)
	r, err := New(context.Background(), Config{Lists: []ListConfig{{Name: "synthetic", Category: "malware", Format: "domains", Path: list}}}, Options{})
	require.NoError(b, err)
	var peak, steady float64
	for range b.N {
		runtime.GC()
		debug.FreeOSMemory()
		steady += procStatusKB(b, "VmRSS")
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Skipf("cannot reset the peak RSS: %v", err)
		}
		require.NoError(b, r.Reload(context.Background()))
		peak += procStatusKB(b, "VmHWM")
	}
	b.ReportMetric(steady/float64(b.N)/1024, "steady-MB")
	b.ReportMetric(peak/float64(b.N)/1024, "peak-MB")
	b.ReportMetric(peak/steady, "peak/steady")
}

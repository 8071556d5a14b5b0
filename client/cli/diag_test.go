package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/netdiag/report"
)

func startGateway(t *testing.T) (url string, stampPort int) {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.API.Listen, cfg.Measure.STAMPListen = "127.0.0.1:0", "127.0.0.1:0"
	s, err := gateway.New(cfg, gateway.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-s.Ready()
	return "http://" + s.Addr().String(), s.STAMPAddr().(*net.UDPAddr).Port
}

func TestDiagQuickAgainstARealGateway(t *testing.T) {
	url, port := startGateway(t)
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	code := Main(context.Background(), []string{"diag", "--quick", "--json", "--server", url, "--stamp-port", strconv.Itoa(port), "--anchor", "loopback=127.0.0.1:9"}, env)
	require.Equal(t, 0, code, errb.String())
	var rep report.Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	assert.Equal(t, report.Schema, rep.Schema)
	assert.Equal(t, report.ModeQuick, rep.Mode)
	require.NotEmpty(t, rep.Latency.Targets)
	gw := rep.Latency.Targets[len(rep.Latency.Targets)-2]
	assert.Equal(t, "gateway", gw.Name)
	anchor := rep.Latency.Targets[len(rep.Latency.Targets)-1]
	assert.Equal(t, "loopback", anchor.Name)
	assert.NotEqual(t, report.MethodNone, anchor.Method, "ICMP or a refused TCP handshake answers")
	assert.NotEqual(t, report.MethodNone, gw.Method)
	require.NotNil(t, rep.Service, "quick mode checks the gateway's service")
	assert.True(t, rep.Service.Answers)
	assert.Equal(t, http.StatusOK, rep.Service.Status)
	assert.Empty(t, errb.String(), "--json prints no progress")

	out.Reset()
	// Without the DNS checks: this host's resolvers are not the gateway's
	// business, and a sandbox's may resolve nothing.
	code = Main(context.Background(), []string{"diag", "--quick", "--dns=false", "--server", url, "--stamp-port", strconv.Itoa(port)}, env)
	require.Equal(t, 0, code, errb.String())
	assert.Contains(t, out.String(), "Line diagnostics against "+url)
	assert.Contains(t, out.String(), "Quick check: the company gateway answers")
	assert.Contains(t, out.String(), "service     "+url+"/healthz answered 200")
	assert.Contains(t, errb.String(), "measuring latency")
}

// TestDiagQuickSaysTheServiceIsDown: the host answers pings, nothing
// listens on the gateway's port, and --quick says so plainly.
func TestDiagQuickSaysTheServiceIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"diag", "--quick", "--dns=false", "--server", fmt.Sprintf("https://127.0.0.1:%d", port)}, Env{Stdout: &out, Stderr: &errb})
	require.Equal(t, 0, code, errb.String())
	first, _, _ := strings.Cut(out.String(), "\n")
	assert.True(t, strings.HasPrefix(first, "The gateway host answers ("), first)
	assert.Contains(t, first, fmt.Sprintf("but its service on :%d does not (connection refused)", port))
	assert.NotContains(t, out.String(), "Quick check: the company gateway answers")
	assert.Contains(t, out.String(), "Company gateway\n    CRITICAL")
	assert.Contains(t, out.String(), fmt.Sprintf("service     https://127.0.0.1:%d/healthz does NOT answer: connection refused", port))
}

func TestDiagRejectsBadFlags(t *testing.T) {
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	assert.Equal(t, 2, Main(context.Background(), []string{"diag", "--stamp-port", "70000", "--server", "http://x"}, env))
	assert.Equal(t, 2, Main(context.Background(), []string{"diag", "--anchor", "dns", "--server", "http://x"}, env))
	assert.Equal(t, 2, Main(context.Background(), []string{"diag", "--anchor", "dns=one.one.one.one", "--server", "http://x"}, env))
	assert.Contains(t, errb.String(), "is not an IP address")
	assert.Equal(t, 1, Main(context.Background(), []string{"diag", "--server", "gw.example.com"}, env))
	assert.Contains(t, errb.String(), "http://")
}

func TestFormatReport(t *testing.T) {
	rep := &report.Report{Server: "http://gw", Mode: report.ModeFull, DurationMS: 6400,
		Latency: report.LatencyReport{Targets: []report.LatencyTarget{
			{Name: "router", Addr: "192.168.1.1", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MinMS: 1, MedianMS: 1.5, P90MS: 2, JitterMS: 0.2}},
			{Name: "gateway", Addr: "203.0.113.7", Method: "none"},
		}},
		Throughput:     &report.ThroughputReport{DownloadMbps: 95.5, UploadMbps: 19, Streams: 4, Bytes: 80e6, Stable: true},
		Responsiveness: &report.ResponsivenessReport{IdleMS: 12, LoadedDownMS: 20, LoadedUpMS: 250, RPM: 240, BufferbloatGrade: "D", IncreaseMS: 238, Method: report.MethodICMP},
		Errors:         []report.ProbeError{{Probe: "latency gateway", Error: "icmp: no answer"}},
		Summary:        "Your line has a problem.",
		Verdicts: []report.Verdict{{ID: report.VerdictBufferbloat, Severity: report.SeverityWarning, Area: report.AreaLine, Summary: "Delay rises by 238 ms when the line is busy.",
			Evidence: "idle 12 ms, loaded 250 ms up", Threshold: "grade B or better"}},
		Suggestions: []report.Suggestion{{ID: report.SuggestionEnableSQM, Summary: "Turn on SQM.", Because: []report.VerdictID{report.VerdictBufferbloat}}},
		Path:        &report.PathReport{UDP: &report.UDPReport{Port: 51820, Error: "no answer"}, MTU: &report.MTUReport{PathMTU: 1400, TunnelMTU: 1320}},
		Service:     &report.ServiceReport{URL: "http://gw/healthz", Port: 80, Answers: true, Status: 200, RTTMS: 1.25},
		DNS: &report.DNSReport{
			Resolvers: []report.ResolverReport{{Addr: "10.99.0.1:53", Role: "company"}},
			Filter: &report.FilterReport{Canary: "phishing.test", CompanyBlocks: ptrTo(true), CompanyAnswer: `NXDOMAIN, EDE 15 "blocked"`, BlockMarker: "ede",
				Control: "example.com", ControlResolves: ptrTo(true)},
			Interception: &report.InterceptReport{Intercepted: true, Probes: []report.InterceptProbe{{Addr: "192.0.2.1:53", Answered: true, RTTMS: 0.4, Answer: "NOERROR 198.18.0.80"}}},
		},
	}
	got := FormatReport(rep)
	assert.True(t, strings.HasPrefix(got, "Your line has a problem.\n"), "the sentence that matters comes first")
	for _, want := range []string{
		"Line diagnostics against http://gw (full run, 6.4 s)",
		"router     192.168.1.1      icmp      1.0ms    1.5ms    2.0ms    0.2ms    0.0%",
		"gateway    203.0.113.7      none   no answer",
		"throughput  download 95.5 Mbit/s, upload 19.0 Mbit/s, up to 4 streams, 80.0 MB moved",
		"bufferbloat grade D (+238 ms), responsiveness 240 RPM",
		"! latency gateway: icmp: no answer",
		"Findings\n  Internet line\n    WARNING  Delay rises by 238 ms when the line is busy.\n             measured: idle 12 ms, loaded 250 ms up\n             limit:    grade B or better",
		"What to do\n  - Turn on SQM.",
		"udp         port 51820 NOT reachable: no answer",
		"mtu         path 1400, tunnel MTU 1320",
		"service     http://gw/healthz answered 200 in 1.2 ms",
		`filter      phishing.test: company resolver blocks it: yes (NXDOMAIN, EDE 15 "blocked"; marked by ede)`,
		"intercept   YES: 192.0.2.1:53 answered NOERROR 198.18.0.80 in 0.4 ms",
	} {
		assert.Contains(t, got, want)
	}
}

func ptrTo[T any](v T) *T { return &v }

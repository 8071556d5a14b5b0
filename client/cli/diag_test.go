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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
	"github.com/tetherwfh/tether/netdiag/netdiagtest"
	"github.com/tetherwfh/tether/netdiag/report"
)

// TestDiagQuickAgainstAMeasurementServer runs `tether diag --quick`
// against Tether's real measurement server and STAMP reflector.
func TestDiagQuickAgainstAMeasurementServer(t *testing.T) {
	srv := netdiagtest.New(t, netdiagtest.Options{})
	url, port := srv.URL, int(srv.STAMP.Port())
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

// daemonReport is a report the fake daemon answers a diagnosis with.
var daemonReport = report.Report{
	Schema: report.Schema, Mode: report.ModeFull, Server: "https://gw.example.com:8443",
	StartedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), DurationMS: 8200,
	Summary: "The line is too slow for calls through a full tunnel.",
	Verdicts: []report.Verdict{{ID: report.VerdictLineSlow, Severity: report.SeverityWarning, Area: report.AreaLine,
		Summary: "The line is slow: 0.9 Mbit/s up", Evidence: "upload 0.9 Mbit/s", Threshold: "3 Mbit/s"}},
	Suggestions: []report.Suggestion{{ID: report.SuggestionUseHotspot, Summary: "use your phone's hotspot for calls",
		Because: []report.VerdictID{report.VerdictLineSlow}}},
}

var daemonProgress = []localapi.Progress{
	{Stage: "latency", Text: "measuring latency, DNS and the path"},
	{Stage: "download", Text: "download: 80.0 Mbit/s on 4 streams"},
	{Stage: "download", Text: "download: 92.1 Mbit/s on 8 streams"},
	{Stage: "upload", Text: "upload: 0.9 Mbit/s on 2 streams"},
	{Stage: "done", Text: "done in 8.2s"},
}

// TestDiagThroughTheDaemon: without --server, tetherd diagnoses; its
// progress comes from the event stream, then the report is rendered.
func TestDiagThroughTheDaemon(t *testing.T) {
	d := enrolledDaemon(t)
	d.SetReport(daemonReport, daemonProgress...)
	code, out, errOut := tether(t, d, "diag")
	require.Equal(t, 0, code, errOut)
	var want bytes.Buffer
	require.NoError(t, report.Render(&want, &daemonReport, report.Options{}))
	assert.Equal(t, want.String(), out)
	assert.Contains(t, out, "The line is too slow for calls through a full tunnel.")
	pad := func(s string) string { return fmt.Sprintf("\r%-50s", s) }
	assert.Equal(t, "measuring latency, DNS and the path\n"+
		pad("download: 80.0 Mbit/s on 4 streams")+pad("download: 92.1 Mbit/s on 8 streams")+"\n"+
		pad("upload: 0.9 Mbit/s on 2 streams")+"\n"+
		"done in 8.2s\n", errOut, "progress on stderr, as the standalone diag")
	var req localapi.DiagnoseRequest
	sent(t, d, localapi.PathDiagnose, &req)
	assert.False(t, req.Quick)
	require.NotEmpty(t, d.Sent(localapi.PathEvents), "it watched the progress")

	code, out, errOut = tether(t, d, "diag", "--quick", "--json")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut, "--json prints no progress")
	sent(t, d, localapi.PathDiagnose, &req)
	assert.True(t, req.Quick)
	var got report.Report
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, daemonReport, got)
	assert.Len(t, d.Sent(localapi.PathEvents), 1, "--json does not watch")
}

func TestDiagThroughTheDaemonErrors(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateNeedsEnrollment})
	code, out, errOut := tether(t, d, "diag")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "tether diag: diagnosing needs an enrollment, which names the gateway: `tether enroll URL --token T`, "+
		"or `tether diag --server URL` without the daemon\n", errOut)

	d = enrolledDaemon(t)
	d.FailOn(localapi.PathDiagnose, &localapi.Error{Status: 409, Code: localapi.CodeBusy, Message: "a diagnosis is running"})
	code, _, errOut = tether(t, d, "diag", "--quick")
	assert.Equal(t, 1, code)
	assert.Equal(t, "tether diag: a diagnosis is running: `tether events` shows its progress; try again when it is done\n", errOut)
}

// TestDiagStandaloneFlagsNeedServer: the flags of a diagnosis without
// the daemon are refused without --server, not silently ignored.
func TestDiagStandaloneFlagsNeedServer(t *testing.T) {
	d := enrolledDaemon(t)
	code, _, errOut := tether(t, d, "diag", "--pin", "sha256:ab", "--wg-port", "51820")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--pin, --wg-port go with --server URL")
	assert.Empty(t, d.Sent(localapi.PathDiagnose))
}

// TestDiagCompareTunnel: --compare-tunnel asks tetherd for both paths;
// it refuses --quick, --uplinks and --server, and a daemon that is not
// connected says what to do.
func TestDiagCompareTunnel(t *testing.T) {
	d := enrolledDaemon(t)
	d.SetReport(daemonReport)
	code, _, errOut := tether(t, d, "diag", "--compare-tunnel", "--json")
	require.Equal(t, 0, code, errOut)
	var req localapi.DiagnoseRequest
	sent(t, d, localapi.PathDiagnose, &req)
	assert.True(t, req.CompareTunnel)
	assert.False(t, req.Quick)

	for _, args := range [][]string{
		{"diag", "--compare-tunnel", "--quick"},
		{"diag", "--compare-tunnel", "--uplinks"},
		{"diag", "--compare-tunnel", "--server", "https://127.0.0.1:1"},
	} {
		code, _, errOut := tether(t, d, args...)
		assert.Equal(t, 2, code, "%v: %s", args, errOut)
		assert.Contains(t, errOut, "--compare-tunnel", args)
	}

	d.FailOn(localapi.PathDiagnose, &localapi.Error{Status: 409, Code: localapi.CodeNotConnected,
		Message: "comparing the tunnel with the line needs the tunnel up: `tether up`, then `tether diag --compare-tunnel`"})
	code, _, errOut = tether(t, d, "diag", "--compare-tunnel")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "needs the tunnel up: `tether up`")
}

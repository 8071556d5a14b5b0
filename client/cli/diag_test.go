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

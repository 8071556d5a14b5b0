package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
)

func TestFormatStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	base := localapi.Status{Version: "dev", Since: now.Add(-90 * time.Second), Gateway: localapi.GatewayStatus{URL: "http://127.0.0.1:8443"}}
	for _, tc := range []struct {
		name string
		edit func(*localapi.Status)
		want string
	}{
		{"starting", func(s *localapi.Status) { s.State = localapi.StateStarting },
			"tetherd  starting (version dev, up 1m30s)\ngateway  http://127.0.0.1:8443: not checked yet\n"},
		{"ready", func(s *localapi.Status) {
			s.State = localapi.StateReady
			s.Gateway.Name, s.Gateway.Reachable = "hq", true
			s.Gateway.RTT = localapi.Duration(412 * time.Microsecond)
			s.Gateway.LastCheck = now.Add(-2 * time.Second)
		}, "tetherd  ready (version dev, up 1m30s)\ngateway  http://127.0.0.1:8443 (hq): reachable, answered in 0.412ms, checked 2s ago\n"},
		{"unreachable", func(s *localapi.Status) {
			s.State = localapi.StateGatewayUnreachable
			s.Gateway.LastCheck = now.Add(-1 * time.Second)
			s.Gateway.Error = "connection refused"
		}, "tetherd  gateway-unreachable (version dev, up 1m30s)\ngateway  http://127.0.0.1:8443: UNREACHABLE, checked 1s ago\n         connection refused\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			tc.edit(&st)
			assert.Equal(t, tc.want, FormatStatus(st, now))
		})
	}
}

func TestRoundRTT(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 412 * time.Microsecond: "0.412ms", 12345 * time.Microsecond: "12.3ms",
		345 * time.Millisecond: "345ms", 1234 * time.Millisecond: "1.23s",
	} {
		assert.Equal(t, want, roundRTT(d))
	}
}

func TestMainExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	assert.Equal(t, 2, Main(context.Background(), nil, env))
	assert.Equal(t, 2, Main(context.Background(), []string{"frobnicate"}, env))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
	assert.Equal(t, 2, Main(context.Background(), []string{"status", "--bogus"}, env))
	assert.Equal(t, 2, Main(context.Background(), []string{"status", "extra"}, env))
	errb.Reset()
	sock := filepath.Join(t.TempDir(), "none.sock")
	assert.Equal(t, 1, Main(context.Background(), []string{"status", "--socket", sock}, env))
	assert.Contains(t, errb.String(), "tetherd is not running")
	out.Reset()
	assert.Equal(t, 0, Main(context.Background(), []string{"version"}, env))
	assert.Contains(t, out.String(), "tether ")
}

// TestStatusAsksTheDaemon runs `tether status` against a fake daemon.
func TestStatusAsksTheDaemon(t *testing.T) {
	d := localapitest.New(t)
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	st := localapi.Status{State: localapi.StateReady, Version: "1.2.3", Since: since,
		Gateway: localapi.GatewayStatus{URL: "https://gw:8443", Name: "hq", Reachable: true,
			RTT: localapi.Duration(2 * time.Millisecond), LastCheck: since}}
	d.SetStatus(st)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"status", "--socket", d.Socket}, args...), Env{Stdout: &out, Stderr: &errb})
		return code, out.String(), errb.String()
	}

	code, out, _ := run()
	require.Equal(t, 0, code)
	lines := strings.Split(out, "\n")
	assert.True(t, strings.HasPrefix(lines[0], "tetherd  ready (version 1.2.3, up 1h0m"), "%q", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "gateway  https://gw:8443 (hq): reachable, answered in 2.0ms, checked 1h0m"), "%q", lines[1])

	code, out, _ = run("--json")
	require.Equal(t, 0, code)
	var got localapi.Status
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, st, got)

	d.Fail(&localapi.Error{Status: 500, Code: localapi.CodeInternal, Message: "boom"})
	code, _, errOut := run()
	assert.Equal(t, 1, code)
	assert.Equal(t, "tether status: localapi: /v1/status: tetherd answered 500: boom (internal)\n", errOut)
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
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
		{"starting", func(s *localapi.Status) { s.State = localapi.StateDisconnected },
			"tetherd  disconnected (version dev, up 1m30s)\ngateway  http://127.0.0.1:8443: not checked yet\n"},
		{"ready", func(s *localapi.Status) {
			s.State = localapi.StateConnected
			s.Gateway.Name, s.Gateway.Reachable = "hq", true
			s.Gateway.RTT = localapi.Duration(412 * time.Microsecond)
			s.Gateway.LastCheck = now.Add(-2 * time.Second)
		}, "tetherd  connected (version dev, up 1m30s)\ngateway  http://127.0.0.1:8443 (hq): reachable, answered in 0.412ms, checked 2s ago\n"},
		{"unreachable", func(s *localapi.Status) {
			s.State = localapi.StateDegraded
			s.Gateway.LastCheck = now.Add(-1 * time.Second)
			s.Gateway.Error = "connection refused"
		}, "tetherd  degraded (version dev, up 1m30s)\ngateway  http://127.0.0.1:8443: UNREACHABLE, checked 1s ago\n         connection refused\n"},
		{"needs enrollment", func(s *localapi.Status) {
			s.State, s.Reason = localapi.StateNeedsEnrollment, "the company revoked this device: `tether enroll URL --token T`"
			s.Enrollment = &localapi.EnrollmentStatus{Gateway: "http://127.0.0.1:8443", PeerID: 3, Address: "10.77.0.9", Revoked: "revoked by an admin"}
			s.Problems = []string{"settings.json was corrupt; set aside as settings.json.corrupt"}
		}, "tetherd  needs_enrollment (version dev, up 1m30s)\n" +
			"         the company revoked this device: `tether enroll URL --token T`\n" +
			"device   enrolled with http://127.0.0.1:8443 as 10.77.0.9 (peer 3)\n" +
			"         REVOKED: revoked by an admin\n" +
			"problem  settings.json was corrupt; set aside as settings.json.corrupt\n" +
			"gateway  http://127.0.0.1:8443: not checked yet\n"},
		{"never enrolled", func(s *localapi.Status) {
			s.State, s.Reason, s.Gateway = localapi.StateNeedsEnrollment, "this device is not enrolled: `tether enroll URL --token T`", localapi.GatewayStatus{}
		}, "tetherd  needs_enrollment (version dev, up 1m30s)\n" +
			"         this device is not enrolled: `tether enroll URL --token T`\n" +
			"gateway  none yet: enrolling names it\n"},
		{"blocked, no handshake yet, tun", func(s *localapi.Status) {
			s.State, s.Reason = localapi.StateBlocked, "the kill switch holds while the gateway does not answer"
			s.Mode, s.Engine, s.FailClosed = "full", "tun", true
			s.Tunnel = &localapi.TunnelStatus{Endpoint: "203.0.113.7:51820", HandshakeAgeS: -1, Health: "connecting"}
		}, "tetherd  blocked (version dev, up 1m30s)\n" +
			"         the kill switch holds while the gateway does not answer\n" +
			"mode     full tunnel, tun engine, kill switch on\n" +
			"tunnel   203.0.113.7:51820: no handshake yet, received 0 B, sent 0 B (connecting)\n" +
			"gateway  http://127.0.0.1:8443: not checked yet\n"},
		{"escapes what the network said", func(s *localapi.Status) {
			s.State = localapi.StateConnected
			s.Gateway.Name, s.Gateway.LastCheck, s.Gateway.Error = "hq\x1b[2J", now, "refused\nfake line"
		}, "tetherd  connected (version dev, up 1m30s)\n" +
			"gateway  http://127.0.0.1:8443 (hq\\x1b[2J): UNREACHABLE, checked 0s ago\n" +
			"         refused\\x0afake line\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			tc.edit(&st)
			assert.Equal(t, tc.want, FormatStatus(st, now))
		})
	}
}

// connectedText is `tether status` for connected(now).
const connectedText = `tetherd  connected (version 1.2.3, up 2h0m0s)
mode     split tunnel, userspace engine
decision split
         the line is 0.9 Mbit/s up with 300 ms under load, below the company's 3 Mbit/s up and 150 ms under load for a full tunnel → split, so calls don't hairpin through the gateway (full_needs)
tunnel   203.0.113.7:51820: handshake 12s ago, received 1.23 MB, sent 346 kB (up)
report   The line is too slow for calls through a full tunnel: 0.9 Mbit/s up. (full, 5m0s ago)
         verdicts: line_slow, bufferbloat
device   enrolled with https://gw.example.com:8443 as 10.77.0.2 (peer 7)
proxies  SOCKS5 127.0.0.1:1080, HTTP 127.0.0.1:8080
gateway  https://gw.example.com:8443 (hq): reachable, answered in 23.4ms, checked 3s ago
`

func TestFormatStatusConnected(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, connectedText, FormatStatus(connected(now), now))
}

// TestStatusConnectedAgainstTheDaemon: the text and the JSON contract of
// `tether status` for a connected daemon.
func TestStatusConnectedAgainstTheDaemon(t *testing.T) {
	d := localapitest.New(t)
	st := connected(time.Now().UTC().Truncate(time.Second))
	d.SetStatus(st)
	code, out, errOut := tether(t, d, "status")
	require.Equal(t, 0, code, errOut)
	// The ages run on while the test does: they are matched, the rest
	// compared.
	ages := regexp.MustCompile(`up 2h0m[01]s|5m[01]s ago|checked [34]s ago`)
	assert.Equal(t, connectedText, ages.ReplaceAllStringFunc(out, func(s string) string {
		return map[byte]string{'u': "up 2h0m0s", '5': "5m0s ago", 'c': "checked 3s ago"}[s[0]]
	}))

	code, out, errOut = tether(t, d, "status", "--json")
	require.Equal(t, 0, code, errOut)
	var got localapi.Status
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, st, got, "the status as the daemon sent it")
	var c struct {
		State    *string `json:"state"`
		Mode     *string `json:"mode"`
		Engine   *string `json:"engine"`
		Decision *struct {
			Mode    *string `json:"mode"`
			Reasons []map[string]string
		} `json:"decision"`
		Tunnel     map[string]any `json:"tunnel"`
		LastReport *struct {
			Summary  *string  `json:"summary"`
			Verdicts []string `json:"verdicts"`
		} `json:"last_report"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &c))
	require.NotNil(t, c.State)
	assert.Equal(t, "connected", *c.State)
	require.NotNil(t, c.Mode)
	assert.Equal(t, "split", *c.Mode)
	require.NotNil(t, c.Engine)
	assert.Equal(t, "userspace", *c.Engine)
	require.NotNil(t, c.Decision)
	assert.Equal(t, "split", *c.Decision.Mode)
	assert.Equal(t, []map[string]string{{"id": "full_needs", "text": st.Decision.Reasons[0].Text}}, c.Decision.Reasons)
	assert.Equal(t, "203.0.113.7:51820", c.Tunnel["endpoint"])
	assert.Equal(t, 12.4, c.Tunnel["handshake_age_s"])
	assert.Equal(t, float64(1234567), c.Tunnel["rx_bytes"])
	assert.Equal(t, float64(345678), c.Tunnel["tx_bytes"])
	require.NotNil(t, c.LastReport)
	assert.Equal(t, st.LastReport.Summary, *c.LastReport.Summary)
	assert.Equal(t, []string{"line_slow", "bufferbloat"}, c.LastReport.Verdicts)
}

func TestBytesSI(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 999: "999 B", 1000: "1.00 kB", 1234: "1.23 kB", 99949: "99.9 kB",
		345678: "346 kB", 999499: "999 kB", 999500: "1.00 MB", 1234567: "1.23 MB", 5e12: "5.00 TB"} {
		assert.Equal(t, want, bytesSI(n), "%d", n)
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
	st := localapi.Status{State: localapi.StateConnected, Version: "1.2.3", Since: since,
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
	assert.True(t, strings.HasPrefix(lines[0], "tetherd  connected (version 1.2.3, up 1h0m"), "%q", lines[0])
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

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
	"github.com/tetherwfh/tether/netdiag/report"
)

// tether runs the command against d's socket (--socket is added after
// the subcommand and any set) and returns its exit code and output.
func tether(t *testing.T, d *localapitest.Daemon, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	args = withSocket(args, d.Socket)
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func withSocket(args []string, sock string) []string {
	n := 1
	if len(args) > 1 && args[0] == "settings" && args[1] == "set" {
		n = 2
	}
	return append(append(append([]string{}, args[:n]...), "--socket", sock), args[n:]...)
}

// sent decodes the body of the last request d received for path.
func sent(t *testing.T, d *localapitest.Daemon, path string, v any) {
	t.Helper()
	reqs := d.Sent(path)
	require.NotEmpty(t, reqs, "nothing was sent to %s", path)
	require.NoError(t, reqs[len(reqs)-1].Decode(v))
}

// enrolledDaemon is a fake daemon with an enrollment, disconnected.
func enrolledDaemon(t *testing.T) *localapitest.Daemon {
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateDisconnected, Version: "1.2.3", Since: time.Now(),
		Enrollment: &localapi.EnrollmentStatus{Gateway: "https://gw.example.com:8443", PeerID: 7, Address: "10.77.0.2"}})
	return d
}

// connected is the status of a daemon connected in split mode, as of now.
func connected(now time.Time) localapi.Status {
	return localapi.Status{
		State: localapi.StateConnected, Version: "1.2.3", Since: now.Add(-2 * time.Hour),
		Mode: "split", Engine: "userspace",
		Decision: &localapi.Decision{Mode: "split", Reasons: []localapi.Reason{{ID: "full_needs",
			Text: "the line is 0.9 Mbit/s up with 300 ms under load, below the company's 3 Mbit/s up and 150 ms under load for a full tunnel → split, so calls don't hairpin through the gateway"}}},
		Tunnel: &localapi.TunnelStatus{Endpoint: "203.0.113.7:51820", HandshakeAgeS: 12.4, RxBytes: 1234567, TxBytes: 345678, Health: "up"},
		LastReport: &localapi.ReportSummary{Summary: "The line is too slow for calls through a full tunnel: 0.9 Mbit/s up.",
			Verdicts: []report.VerdictID{report.VerdictLineSlow, report.VerdictBufferbloat}, At: now.Add(-5 * time.Minute), Mode: report.ModeFull},
		Enrollment: &localapi.EnrollmentStatus{Gateway: "https://gw.example.com:8443", PeerID: 7, Address: "10.77.0.2"},
		Proxies:    &localapi.Proxies{SOCKS5: "127.0.0.1:1080", HTTP: "127.0.0.1:8080"},
		Gateway: localapi.GatewayStatus{URL: "https://gw.example.com:8443", Name: "hq", Reachable: true,
			RTT: localapi.Duration(23400 * time.Microsecond), LastCheck: now.Add(-3 * time.Second)},
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, Main(context.Background(), []string{"help"}, Env{Stdout: &out, Stderr: &errb}))
	for _, name := range []string{"status", "up", "down", "enroll", "diag", "settings", "events", "tunnel", "version", "help"} {
		assert.Regexp(t, `(?m)^  `+name+` +\S`, out.String())
	}
	assert.Empty(t, errb.String())
}

// TestNoDaemon: every command that needs the daemon says it is not
// running and how to start it.
func TestNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"status"}, {"status", "--json"}, {"up"}, {"up", "--json"}, {"down"}, {"enroll", "https://gw:8443", "--token", "t"},
		{"diag"}, {"diag", "--json"}, {"settings"}, {"settings", "set", "mode=full"}, {"events"}, {"events", "--json"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), withSocket(args, sock), Env{Stdout: &out, Stderr: &errb})
		assert.Equal(t, 1, code, "%v", args)
		assert.Equal(t, "tether "+args[0]+": tetherd is not running (no daemon at "+sock+"; start it with `tetherd --config FILE`)\n", errb.String(), "%v", args)
		assert.Empty(t, out.String(), "%v", args)
	}
}

// TestJSONIsOneDocument: every --json output is one JSON value and
// nothing else on stdout.
func TestJSONIsOneDocument(t *testing.T) {
	d := enrolledDaemon(t)
	d.SetReport(report.Report{Schema: report.Schema, Summary: "ok"}, localapi.Progress{Stage: "latency", Text: "measuring latency"})
	for _, args := range [][]string{{"status", "--json"}, {"up", "--json"}, {"down", "--json"}, {"diag", "--json"},
		{"settings", "--json"}, {"settings", "set", "connect=true", "--json"}, {"enroll", "https://gw:8443", "--token", "t", "--json"}} {
		code, out, errOut := tether(t, d, args...)
		require.Equal(t, 0, code, "%v: %s", args, errOut)
		assert.Empty(t, errOut, "%v: --json prints nothing else", args)
		dec := json.NewDecoder(bytes.NewReader([]byte(out)))
		var v any
		require.NoError(t, dec.Decode(&v), "%v", args)
		assert.False(t, dec.More(), "%v: one document", args)
	}
}

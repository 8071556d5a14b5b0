package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
)

var splitDecision = localapi.Decision{Mode: "split", Reasons: []localapi.Reason{
	{ID: "full_needs", Text: "the line is 0.9 Mbit/s up, below the company's 3 Mbit/s for a full tunnel → split"},
	{ID: "user_choice_refused", Text: "your choice of a full tunnel is not allowed by company policy"},
}}

func TestUpPrintsTheDecision(t *testing.T) {
	d := enrolledDaemon(t)
	d.SetDecision(splitDecision)
	code, out, errOut := tether(t, d, "up", "--wait", "0")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "Connecting in split mode:\n"+
		"  - the line is 0.9 Mbit/s up, below the company's 3 Mbit/s for a full tunnel → split (full_needs)\n"+
		"  - your choice of a full tunnel is not allowed by company policy (user_choice_refused)\n"+
		"`tether status` shows the tunnel; `tether events` follows it.\n", out)
	var req localapi.UpRequest
	sent(t, d, localapi.PathUp, &req)
	assert.Equal(t, localapi.UpRequest{Mode: ""}, req, "no --mode: the settings' mode")

	code, out, errOut = tether(t, d, "up", "--mode", "split", "--json")
	require.Equal(t, 0, code, errOut)
	sent(t, d, localapi.PathUp, &req)
	assert.Equal(t, "split", req.Mode)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, map[string]any{"mode": "split", "reasons": []any{
		map[string]any{"id": "full_needs", "text": splitDecision.Reasons[0].Text},
		map[string]any{"id": "user_choice_refused", "text": splitDecision.Reasons[1].Text},
	}}, got, "the JSON contract: {mode, reasons: [{id, text}]}")
}

func TestUpWithoutReasons(t *testing.T) {
	d := enrolledDaemon(t)
	code, out, _ := tether(t, d, "up", "--mode", "full")
	require.Equal(t, 0, code)
	assert.Regexp(t, "^Connecting in full mode.\n`tether status` shows the tunnel; `tether events` follows it.\n"+
		`Connected in \d+\.\d s \(userspace engine\)\.\n$`, out, "up waits for the tunnel, and says so")
}

// TestUpSaysWhyTheTunnelDidNotConnect: when the tunnel does not answer
// within --wait, up fails with tetherd's reason, which says what to do;
// the decision was printed all the same.
func TestUpSaysWhyTheTunnelDidNotConnect(t *testing.T) {
	d := enrolledDaemon(t)
	why := "gateway 203.0.113.7:51820 did not answer the WireGuard handshake within 5 s: UDP may be blocked on this network; `tether diag` checks"
	d.UpLeaves(localapi.StateConnecting, why)
	code, out, errOut := tether(t, d, "up", "--wait", "600ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "Connecting in full mode.")
	assert.Equal(t, "tether up: not connected after 600ms: "+why+"\n", errOut)

	code, out, errOut = tether(t, d, "up", "--wait", "300ms", "--json")
	assert.Equal(t, 1, code)
	var dec localapi.Decision
	require.NoError(t, json.Unmarshal([]byte(out), &dec), "the decision is still printed as JSON")
	assert.Contains(t, errOut, "UDP may be blocked")

	d.UpLeaves(localapi.StateNeedsEnrollment, "the company revoked this device: enroll again with a new token")
	code, _, errOut = tether(t, d, "up")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "revoked", "a state that cannot become connected ends the wait at once")

	code, _, errOut = tether(t, d, "up", "--wait", "-1s")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--wait")
}

func TestUpRefused(t *testing.T) {
	d := enrolledDaemon(t)
	d.RefuseMode("split", "company policy does not allow this tunnel mode: the company allows only full tunnels")
	code, out, errOut := tether(t, d, "up", "--mode", "split")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "tether up: company policy does not allow this tunnel mode: the company allows only full tunnels: "+
		"`tether up --mode auto` lets tetherd pick a mode the company allows\n", errOut)
	code, out, _ = tether(t, d, "up", "--mode", "split", "--json")
	assert.Equal(t, 1, code)
	assert.Empty(t, out, "a refusal prints no JSON")
}

func TestUpNotEnrolled(t *testing.T) {
	d := localapitest.New(t)
	d.SetStatus(localapi.Status{State: localapi.StateNeedsEnrollment})
	code, _, errOut := tether(t, d, "up")
	assert.Equal(t, 1, code)
	assert.Equal(t, "tether up: this device is not enrolled: `tether enroll URL --token T`\n", errOut)

	d.FailOn(localapi.PathUp, &localapi.Error{Status: 409, Code: localapi.CodeNotEnrolled, Message: "the company revoked this device"})
	code, _, errOut = tether(t, d, "up")
	assert.Equal(t, 1, code)
	assert.Equal(t, "tether up: the company revoked this device: enroll first: `tether enroll URL --token T`\n", errOut,
		"a message without a next step gets one")
}

func TestUpRejectsABadMode(t *testing.T) {
	d := enrolledDaemon(t)
	code, _, errOut := tether(t, d, "up", "--mode", "sideways")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `--mode "sideways": want auto, full or split`)
	assert.Empty(t, d.Sent(localapi.PathUp), "nothing was asked of the daemon")
}

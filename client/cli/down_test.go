package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
)

func TestDown(t *testing.T) {
	d := enrolledDaemon(t)
	d.SetStatus(connected(time.Now()))
	code, out, errOut := tether(t, d, "down")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "Tunnel down; tetherd is disconnected.\n  the tunnel is down by choice: `tether up` connects\n", out)
	require.Len(t, d.Sent(localapi.PathDown), 1)

	d.SetStatus(connected(time.Now()))
	code, out, _ = tether(t, d, "down", "--json")
	require.Equal(t, 0, code)
	var st localapi.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, localapi.StateDisconnected, st.State)
	assert.Empty(t, st.Mode)
	assert.Nil(t, st.Tunnel)
}

func TestReasonOrStep(t *testing.T) {
	assert.Equal(t, "`tether up` connects again.\n", reasonOrStep("", "`tether up` connects again."))
	assert.Equal(t, "  the company asked\n`tether up` connects again.\n", reasonOrStep("the company asked", "`tether up` connects again."))
	assert.Equal(t, "  down by choice: `tether up` connects\n", reasonOrStep("down by choice: `tether up` connects", "`tether up` connects again."),
		"a reason that names a command is the next step")
	assert.Equal(t, "  a \\x1b[2Jb\nnext\n", reasonOrStep("a \x1b[2Jb", "next"), "escaped")
}

package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
)

const defaultSettingsText = `mode=auto            the tunnel's mode: auto (tetherd decides), full or split
connect=false        keep the tunnel up, at start and after a network change: true or false
fail_closed=false    the kill switch, where company policy leaves it to you: true or false
engine=auto          auto (TUN where tetherd may create a device, else userspace), tun or userspace
`

func TestSettingsShow(t *testing.T) {
	d := enrolledDaemon(t)
	code, out, errOut := tether(t, d, "settings")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, defaultSettingsText, out)

	d.SetSettings(localapi.Settings{Mode: "split", Connect: true, FailClosed: true, Engine: "tun"})
	code, out, _ = tether(t, d, "settings", "--json")
	require.Equal(t, 0, code)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, map[string]any{"mode": "split", "connect": true, "fail_closed": true, "engine": "tun"}, got)
}

func TestSettingsSet(t *testing.T) {
	d := enrolledDaemon(t)
	d.SetSettings(localapi.Settings{Mode: "auto", Connect: true, Engine: "auto"})
	code, out, errOut := tether(t, d, "settings", "set", "mode=split", "fail_closed=true", "engine=userspace")
	require.Equal(t, 0, code, errOut)
	var put localapi.Settings
	sent(t, d, localapi.PathSettings, &put)
	assert.Equal(t, localapi.Settings{Mode: "split", Connect: true, FailClosed: true, Engine: "userspace"}, put,
		"the settings not named keep their values")
	assert.Equal(t, "Saved.\n"+
		"mode=split           the tunnel's mode: auto (tetherd decides), full or split\n"+
		"connect=true         keep the tunnel up, at start and after a network change: true or false\n"+
		"fail_closed=true     the kill switch, where company policy leaves it to you: true or false\n"+
		"engine=userspace     auto (TUN where tetherd may create a device, else userspace), tun or userspace\n", out)

	code, out, errOut = tether(t, d, "settings", "set", "connect=false", "--json")
	require.Equal(t, 0, code, errOut)
	var got localapi.Settings
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, localapi.Settings{Mode: "split", FailClosed: true, Engine: "userspace"}, got)
	assert.Equal(t, got, d.Settings())
}

func TestSettingsSetValidates(t *testing.T) {
	d := enrolledDaemon(t)
	for _, tc := range []struct{ arg, want string }{
		{"mode=sideways", `mode="sideways": want auto, full, split`},
		{"engine=kernel", `engine="kernel": want auto, tun, userspace`},
		{"connect=maybe", `connect="maybe": want true or false`},
		{"colour=blue", `no setting "colour": the settings are mode, connect, fail_closed and engine`},
		{"mode", `"mode": want KEY=VALUE`},
	} {
		code, _, errOut := tether(t, d, "settings", "set", "connect=true", tc.arg)
		assert.Equal(t, 2, code, tc.arg)
		assert.Contains(t, errOut, tc.want, tc.arg)
	}
	code, _, errOut := tether(t, d, "settings", "set")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "usage: tether settings set KEY=VALUE")
	for _, r := range d.Requests() {
		assert.NotEqual(t, "PUT", r.Method, "nothing invalid was sent")
	}
}

func TestSettingsSetRefused(t *testing.T) {
	d := enrolledDaemon(t)
	d.RefuseMode("split", "company policy does not allow this tunnel mode: the company allows only full tunnels")
	code, out, errOut := tether(t, d, "settings", "set", "mode=split")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "tether settings: company policy does not allow this tunnel mode: the company allows only full tunnels: "+
		"`tether settings set mode=auto` lets tetherd pick a mode the company allows\n", errOut)
	assert.Equal(t, "auto", d.Settings().Mode)
}

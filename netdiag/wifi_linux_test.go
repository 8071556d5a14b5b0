package netdiag

import (
	"testing"

	"github.com/mdlayher/wifi"
	"github.com/stretchr/testify/assert"
)

func TestSecurityOf(t *testing.T) {
	for _, tc := range []struct {
		akms []wifi.RSNAKM
		want string
	}{
		{[]wifi.RSNAKM{wifi.RSNAkmSAE}, "wpa3"},
		{[]wifi.RSNAKM{wifi.RSNAkmPSK, wifi.RSNAkmSAE}, "wpa2/wpa3"},
		{[]wifi.RSNAKM{wifi.RSNAkmPSK}, "wpa2"},
		{[]wifi.RSNAKM{wifi.RSNAkm8021X}, "wpa2-enterprise"},
		{[]wifi.RSNAKM{wifi.RSNAkm8021XSuiteB}, "wpa3-enterprise"},
		{[]wifi.RSNAKM{wifi.RSNAkmTDLS}, ""},
	} {
		assert.Equal(t, tc.want, securityOf(wifi.RSNInfo{Version: 1, AKMs: tc.akms}), "%v", tc.akms)
	}
	assert.Equal(t, "", securityOf(wifi.RSNInfo{}), "no RSN element: open, WEP or WPA1, which nl80211 does not tell apart here")
}

func TestHashSSID(t *testing.T) {
	a := HashSSID([]byte("install-1"), "HomeNet")
	assert.Len(t, a, 16)
	assert.Equal(t, a, HashSSID([]byte("install-1"), "HomeNet"), "stable within an installation")
	assert.NotEqual(t, a, HashSSID([]byte("install-2"), "HomeNet"), "unlinkable across installations")
	assert.NotContains(t, a, "HomeNet")
	assert.Empty(t, HashSSID(nil, "HomeNet"), "no salt, no hash")
}

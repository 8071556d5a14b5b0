package netdiag

import (
	"slices"

	"github.com/mdlayher/wifi"

	"github.com/tetherwfh/tether/netdiag/report"
)

// wifiFacts asks nl80211 (github.com/mdlayher/wifi, the standard Go
// client) about the interface's association: signal and transmit rate
// from the station, the SSID (hashed) and security from the BSS. What
// the kernel does not say stays unknown.
func wifiFacts(name string, salt []byte) *report.WiFiReport {
	c, err := wifi.New()
	if err != nil {
		return nil
	}
	defer c.Close()
	ifs, err := c.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifi := range ifs {
		if ifi.Name != name {
			continue
		}
		w := &report.WiFiReport{}
		if st, err := c.StationInfo(ifi); err == nil && len(st) > 0 {
			if s := st[0].Signal; s < 0 {
				w.SignalDBM = &s
			}
			if r := st[0].TransmitBitrate; r > 0 {
				mb := float64(r) / 1e6
				w.LinkMbps = &mb
			}
		}
		if bss, err := c.BSS(ifi); err == nil {
			w.SSIDHash = HashSSID(salt, bss.SSID)
			w.Security = securityOf(bss.RSN)
		}
		return w
	}
	return nil
}

// securityOf names a BSS's security from its RSN element's key
// management suites. Without an RSN element the network is open, WEP or
// WPA1, which nl80211's BSS record as this library reads it does not
// tell apart: unknown, not "open".
func securityOf(rsn wifi.RSNInfo) string {
	if !rsn.IsInitialized() {
		return ""
	}
	has := func(akms ...wifi.RSNAKM) bool {
		return slices.ContainsFunc(rsn.AKMs, func(a wifi.RSNAKM) bool { return slices.Contains(akms, a) })
	}
	sae := has(wifi.RSNAkmSAE, wifi.RSNAkmFTSAE)
	psk := has(wifi.RSNAkmPSK, wifi.RSNAkmFTPSK, wifi.RSNAkmPSKSHA256, wifi.RSNAkmFTPSKSHA384)
	eap := has(wifi.RSNAkm8021X, wifi.RSNAkmFT8021X, wifi.RSNAkm8021XSHA256, wifi.RSNAkm8021XSuiteB, wifi.RSNAkm8021XCNSA, wifi.RSNAkmFT8021XSHA384)
	switch {
	case sae && !psk:
		return "wpa3"
	case sae && psk:
		return "wpa2/wpa3" // transition mode: either may be in use
	case has(wifi.RSNAkm8021XSuiteB, wifi.RSNAkm8021XCNSA):
		return "wpa3-enterprise"
	case eap:
		return "wpa2-enterprise"
	case psk:
		return "wpa2"
	}
	return ""
}

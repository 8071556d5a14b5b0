package netdiag

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// NetworkReport is the local network: the default route's interface and,
// on Wi-Fi, the radio facts the OS exposes. Unknown facts are absent,
// never guessed.
type NetworkReport struct {
	Interface string `json:"interface,omitempty"`
	// Type is wifi, ethernet, cellular, tethered, virtual or unknown.
	Type string      `json:"type"`
	WiFi *WiFiReport `json:"wifi,omitempty"`
	// RouterMS and GatewayMS are the idle medians to the home router and
	// the company gateway: a slow router means Wi-Fi or LAN trouble, a
	// fast router and a slow gateway means the ISP.
	RouterMS  *float64 `json:"router_ms,omitempty"`
	GatewayMS *float64 `json:"gateway_ms,omitempty"`
}

// WiFiReport holds radio facts. The SSID is never reported: networks'
// names and BSSIDs locate a person. SSIDHash, salted per installation,
// lets the helpdesk see "the same network as last time" and nothing more.
type WiFiReport struct {
	SignalDBM *int     `json:"signal_dbm,omitempty"`
	LinkMbps  *float64 `json:"link_mbps,omitempty"`
	// Security is open, wep, wpa, wpa2 or wpa3; absent when unknown.
	Security string `json:"security,omitempty"`
	SSIDHash string `json:"ssid_hash,omitempty"`
}

// HashSSID hides an SSID behind a per-installation salt: SHA-256 over
// salt and name, 16 hex digits. Without a salt there is no hash.
func HashSSID(salt []byte, ssid string) string {
	if len(salt) == 0 || ssid == "" {
		return ""
	}
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte{0})
	h.Write([]byte(ssid))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// maxProcWireless bounds /proc/net/wireless: a header and a line per
// wireless interface.
const maxProcWireless = 64 << 10

// ParseProcWireless reads /proc/net/wireless (Linux wireless extensions)
// and returns each interface's signal level in dBm. Levels the driver
// reports in relative units (positive numbers) are left out: they are
// not dBm, and guessing a conversion would be guessing.
func ParseProcWireless(data []byte) (map[string]int, error) {
	if len(data) > maxProcWireless {
		return nil, fmt.Errorf("/proc/net/wireless: %d bytes, more than %d", len(data), maxProcWireless)
	}
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if n <= 2 {
			continue // two header lines
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 3 {
			continue
		}
		level, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "."), 64)
		if err != nil || level >= 0 || level < -150 {
			continue
		}
		out[strings.TrimSpace(name)] = int(level)
	}
	return out, sc.Err()
}

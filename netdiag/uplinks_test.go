package netdiag

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tetherwfh/tether/netdiag/report"
)

func TestParseDefaultRoutes(t *testing.T) {
	const hdr = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	got := ParseDefaultRoutes([]byte(hdr +
		"usb0\t00000000\t010A14AC\t0003\t0\t0\t600\t00000000\t0\t0\t0\n" +
		"wlan0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"wlan0\t00000000\t014DA8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"down0\t00000000\t014DA8C0\t0002\t0\t0\t50\t00000000\t0\t0\t0\n" + // not RTF_UP
		"ppp0\t00000000\t00000000\t0001\t0\t0\t700\t00000000\t0\t0\t0\n" +
		"bad\t00000000\tzz\t0003\t0\t0\t1\t00000000\n" +
		"short\t00000000\n"))
	assert.Equal(t, []DefaultRoute{
		{Interface: "wlan0", Gateway: netip.MustParseAddr("192.168.77.1"), Metric: 100},
		{Interface: "usb0", Gateway: netip.MustParseAddr("172.20.10.1"), Metric: 600},
		{Interface: "ppp0", Metric: 700},
	}, got)
	assert.Empty(t, ParseDefaultRoutes(nil))
}

func TestUplinkLabel(t *testing.T) {
	for _, tc := range []struct {
		u    Uplink
		want string
	}{
		{Uplink{Interface: "wlp2s0", Type: "wifi"}, "Wi-Fi (wlp2s0)"},
		{Uplink{Interface: "enx0a1b2c", Type: "tethered"}, "phone (enx0a1b2c)"},
		{Uplink{Interface: "usb0", Type: "virtual"}, "phone (usb0)"},
		{Uplink{Interface: "eth0", Type: "ethernet"}, "Ethernet (eth0)"},
		{Uplink{Interface: "wwan0", Type: "cellular"}, "mobile (wwan0)"},
		{Uplink{Interface: "br-lan", Type: "virtual"}, "br-lan"},
	} {
		assert.Equal(t, tc.want, tc.u.Label(), tc.u.Interface)
	}
}

// The choice for a call: enough bandwidth first, then the shortest queue
// under load, and a switch only when it is clearly worth it.
func TestChooseUplink(t *testing.T) {
	wifi := func(up, down, idle, inc float64) report.UplinkResult {
		return report.UplinkResult{Interface: "wlan0", Label: "Wi-Fi (wlan0)", Default: true, UploadMbps: up, DownloadMbps: down, IdleMS: idle, IncreaseMS: inc}
	}
	phone := func(up, down, idle, inc float64) report.UplinkResult {
		return report.UplinkResult{Interface: "usb0", Label: "phone (usb0)", UploadMbps: up, DownloadMbps: down, IdleMS: idle, IncreaseMS: inc}
	}
	for _, tc := range []struct {
		name    string
		ups     []report.UplinkResult
		best    string
		switch_ bool
		text    string
	}{
		{"the issue's example", []report.UplinkResult{wifi(4.1, 40, 18, 310), phone(18, 30, 40, 45)}, "usb0", true,
			"Wi-Fi (wlan0): 4.1 Mbit/s up, 40 Mbit/s down, +310 ms under load; phone (usb0): 18 Mbit/s up, 30 Mbit/s down, +45 ms under load: switch to the phone for this call."},
		{"both fine, Wi-Fi better", []report.UplinkResult{wifi(20, 100, 10, 20), phone(18, 30, 40, 45)}, "wlan0", false,
			"Wi-Fi (wlan0): 20 Mbit/s up, 100 Mbit/s down, +20 ms under load; phone (usb0): 18 Mbit/s up, 30 Mbit/s down, +45 ms under load: stay on Wi-Fi."},
		{"phone slightly better: not worth a switch", []report.UplinkResult{wifi(5, 50, 20, 80), phone(10, 30, 40, 30)}, "usb0", false, ""},
		{"Wi-Fi too thin for a call", []report.UplinkResult{wifi(0.8, 16, 10, 20), phone(3, 10, 50, 100)}, "usb0", true, ""},
		{"neither fits: more upload wins", []report.UplinkResult{wifi(0.4, 2, 10, 300), phone(1.2, 2, 50, 100)}, "usb0", true, ""},
		{"phone unmeasured", []report.UplinkResult{wifi(5, 50, 20, 80), {Interface: "usb0", Label: "phone (usb0)", Error: "download: no route"}}, "wlan0", false,
			"Wi-Fi (wlan0): 5.0 Mbit/s up, 50 Mbit/s down, +80 ms under load; phone (usb0): download: no route: stay on Wi-Fi."},
		{"default unmeasured", []report.UplinkResult{{Interface: "wlan0", Label: "Wi-Fi (wlan0)", Default: true, Error: "x"}, phone(5, 10, 40, 30)}, "usb0", true, ""},
		{"nothing measured", []report.UplinkResult{{Interface: "wlan0", Default: true, Error: "x"}}, "", false, "No uplink could be measured."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &report.UplinksReport{Uplinks: tc.ups}
			chooseUplink(c)
			assert.Equal(t, tc.best, c.Best)
			assert.Equal(t, tc.switch_, c.Switch)
			if tc.text != "" {
				assert.Equal(t, tc.text, c.Recommendation)
			}
		})
	}
}

package netdiag

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/tetherwfh/tether/netdiag/report"
)

// localNetwork describes the interface named iface, or the default
// route's when iface is empty. It runs where the probes run (Netns), so
// netlink and /proc see that namespace.
func localNetwork(iface string, ssidSalt []byte) *report.NetworkReport {
	n := &report.NetworkReport{Type: "unknown"}
	name, err := iface, error(nil)
	if name == "" {
		name, err = defaultInterface()
	}
	if err != nil {
		return n
	}
	n.Interface = name
	n.Type = interfaceType(name)
	if n.Type == "wifi" {
		w := wifiFacts(name, ssidSalt)
		if w == nil {
			w = &report.WiFiReport{}
		}
		if w.SignalDBM == nil {
			// Wireless extensions, for drivers nl80211 says less about.
			if b, err := os.ReadFile("/proc/thread-self/net/wireless"); err == nil {
				if levels, err := ParseProcWireless(b); err == nil {
					if l, ok := levels[name]; ok {
						w.SignalDBM = &l
					}
				}
			}
		}
		n.WiFi = w
	}
	return n
}

// interfaceType classifies an interface: virtual links by their netlink
// kind; physical ones by what sysfs says of their device and driver.
func interfaceType(name string) string {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return "unknown"
	}
	if link.Type() != "device" {
		return "virtual" // veth, tuntap, bridge, wireguard, vlan...
	}
	sys := filepath.Join("/sys/class/net", name)
	if _, err := os.Stat(filepath.Join(sys, "wireless")); err == nil {
		return "wifi"
	}
	if _, err := os.Stat(filepath.Join(sys, "phy80211")); err == nil {
		return "wifi"
	}
	if b, err := os.ReadFile(filepath.Join(sys, "uevent")); err == nil && strings.Contains(string(b), "DEVTYPE=wwan") {
		return "cellular"
	}
	if drv, err := os.Readlink(filepath.Join(sys, "device", "driver")); err == nil {
		switch filepath.Base(drv) {
		case "rndis_host", "cdc_ether", "cdc_ncm", "ipheth", "cdc_mbim", "qmi_wwan":
			// USB tethering to a phone (Android's RNDIS/NCM, iPhone's
			// ipheth) or a USB modem.
			if strings.HasPrefix(filepath.Base(drv), "qmi") || strings.HasSuffix(filepath.Base(drv), "mbim") {
				return "cellular"
			}
			return "tethered"
		}
	}
	if _, err := os.Stat(filepath.Join(sys, "device")); err != nil {
		return "virtual"
	}
	return "ethernet"
}

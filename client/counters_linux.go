package client

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// interfaceBytes is iface's bytes received plus sent, from sysfs; ok
// false when unknown.
func interfaceBytes(iface string) (uint64, bool) {
	if iface == "" || strings.ContainsAny(iface, "/.") {
		return 0, false
	}
	var total uint64
	for _, f := range []string{"rx_bytes", "tx_bytes"} {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", iface, "statistics", f))
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, false
		}
		total += n
	}
	return total, true
}

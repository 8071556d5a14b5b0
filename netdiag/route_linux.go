package netdiag

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// defaultGateway reads the IPv4 default route's gateway. It reads
// /proc/thread-self, so a caller inside a network namespace sees that
// namespace's routes.
func defaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/thread-self/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netdiag: %w", err)
	}
	defer f.Close()
	return parseRoutes(f)
}

// defaultInterface names the IPv4 default route's interface, read as
// defaultGateway reads it.
func defaultInterface() (string, error) {
	b, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		return "", fmt.Errorf("netdiag: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "00000000" {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("netdiag: no IPv4 default route")
}

// parseRoutes finds the default route in /proc/net/route's format.
func parseRoutes(f *os.File) (netip.Addr, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(fields[2])
		if err != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
		if addr := netip.AddrFrom4(a); !addr.IsUnspecified() {
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("netdiag: no IPv4 default route")
}

// gatewayOn reads the gateway of iface's IPv4 default route, for a run
// bound to that interface.
func gatewayOn(iface string) (netip.Addr, error) {
	b, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netdiag: %w", err)
	}
	for _, r := range ParseDefaultRoutes(b) {
		if r.Interface == iface && r.Gateway.IsValid() {
			return r.Gateway, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("netdiag: no IPv4 default route on %s", iface)
}

// defaultRoutes reads every IPv4 default route, as defaultGateway does.
func defaultRoutes() ([]DefaultRoute, error) {
	b, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		return nil, fmt.Errorf("netdiag: %w", err)
	}
	return ParseDefaultRoutes(b), nil
}

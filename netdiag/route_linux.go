package netdiag

import (
	"fmt"
	"io"
	"net/netip"
	"os"
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

// defaultInterface names the IPv4 default route's interface (the lowest
// metric's), read as defaultGateway reads it.
func defaultInterface() (string, error) {
	routes, err := defaultRoutes()
	if err != nil {
		return "", err
	}
	if len(routes) == 0 {
		return "", fmt.Errorf("netdiag: no IPv4 default route")
	}
	return routes[0].Interface, nil
}

// parseRoutes finds the default route's gateway in /proc/net/route's
// format: the lowest metric's that has one.
func parseRoutes(f *os.File) (netip.Addr, error) {
	b, err := io.ReadAll(f)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netdiag: %w", err)
	}
	for _, r := range ParseDefaultRoutes(b) {
		if r.Gateway.IsValid() {
			return r.Gateway, nil
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

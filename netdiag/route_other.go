//go:build !linux

package netdiag

import (
	"errors"
	"net/netip"
)

// defaultGateway is not implemented here yet; configure Config.Router.
func defaultGateway() (netip.Addr, error) {
	return netip.Addr{}, errors.New("netdiag: default gateway discovery is not implemented on this OS")
}

func gatewayOn(string) (netip.Addr, error) { return defaultGateway() }

func defaultRoutes() ([]DefaultRoute, error) {
	return nil, errors.New("netdiag: listing uplinks is not implemented on this OS yet")
}

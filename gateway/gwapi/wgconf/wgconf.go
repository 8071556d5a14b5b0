// Package wgconf turns the gateway's answer to an enrollment
// (gwapi.Enrollment) into a tunnel configuration and plan, so the daemon,
// the dev stack, the bench and the tests read an enrollment one way.
//
// Boundaries: wgconf imports gwapi and tunnel only; like gwapi it links
// nothing of the gateway.
package wgconf

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
)

// FromEnrollment turns an enrollment into a tunnel configuration with
// key, the private half of the enrolled public key, and a plan for mode,
// which the company policy (en.AllowedModes) must allow. endpoint is the
// gateway's resolved endpoint address, which a full tunnel routes around.
// The device's address is a host route; its DNS is the enrollment's, or
// the gateway's tunnel address when it names none.
func FromEnrollment(key tunnel.PrivateKey, en gwapi.Enrollment, mode tunnel.Mode, endpoint netip.Addr) (*tunnel.Config, *tunnel.Plan, error) {
	if !slices.Contains(en.AllowedModes, string(mode)) {
		return nil, nil, fmt.Errorf("enroll: the company allows %s tunnels, not %s", strings.Join(en.AllowedModes, " or "), mode)
	}
	addr, err := netip.ParsePrefix(en.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: address: %w", err)
	}
	gk, err := tunnel.ParsePublicKey(en.GatewayPublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: gateway key: %w", err)
	}
	gw, err := netip.ParseAddr(en.GatewayAddress)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: gateway address: %w", err)
	}
	company := []netip.Prefix{addr.Masked()}
	for _, c := range en.CompanyPrefixes {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, nil, fmt.Errorf("enroll: company prefix: %w", err)
		}
		company = append(company, p)
	}
	var dns []netip.Addr
	for _, d := range en.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, nil, fmt.Errorf("enroll: DNS: %w", err)
		}
		dns = append(dns, a)
	}
	if len(dns) == 0 {
		dns = []netip.Addr{gw}
	}
	plan, err := tunnel.Compute(tunnel.Policy{Mode: mode, Endpoints: []netip.Addr{endpoint}, CompanyPrefixes: company, CompanyDNS: dns, MTU: en.MTU})
	if err != nil {
		return nil, nil, err
	}
	cfg := &tunnel.Config{
		Interface: tunnel.Interface{PrivateKey: key, Addresses: []netip.Prefix{netip.PrefixFrom(addr.Addr(), addr.Addr().BitLen())}, DNS: dns},
		Peers:     []tunnel.Peer{{PublicKey: gk, Endpoint: en.Endpoint, AllowedIPs: plan.Routes, PersistentKeepalive: 25}},
	}
	return cfg, plan, nil
}

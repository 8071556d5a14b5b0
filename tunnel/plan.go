package tunnel

import (
	"fmt"
	"net/netip"
	"slices"

	"go4.org/netipx"
)

// Mode says what goes through the tunnel.
type Mode string

const (
	// ModeFull sends everything through the tunnel except the gateway
	// endpoint, the LAN when policy allows it, and explicit exclusions.
	ModeFull Mode = "full"
	// ModeSplit sends only the company prefixes and the company DNS
	// servers through the tunnel.
	ModeSplit Mode = "split"
	// ModeConfig takes routes from the peers' AllowedIPs, as wg-quick
	// does, for imported stock configs.
	ModeConfig Mode = "config"
)

// DefaultMTU is wg-quick's choice for a 1500-byte path: 1500 minus 80
// bytes, the WireGuard overhead over IPv6 (40 IP + 8 UDP + 32 WireGuard).
const DefaultMTU = 1420

// Policy is what the route planner needs to know. It is plain data: the
// daemon fills it from company policy, enrollment and the host's
// interfaces; tests fill it by hand.
type Policy struct {
	Mode Mode
	// Endpoints are the gateway's addresses. They never route through the
	// tunnel, which would be a loop.
	Endpoints []netip.Addr
	// LAN lists the local networks. In full mode, AllowLAN carves them
	// out of the tunnel so printers and the router stay reachable; with
	// AllowLAN false they stay in the tunnel, and the kill switch drops
	// direct LAN traffic.
	LAN      []netip.Prefix
	AllowLAN bool
	// CompanyPrefixes go through the tunnel in both modes.
	CompanyPrefixes []netip.Prefix
	// CompanyDNS are the company resolvers; they always go through the
	// tunnel, so DNS never leaks.
	CompanyDNS    []netip.Addr
	SearchDomains []string
	// Exclude is carved out of the tunnel routes, in any mode.
	Exclude []netip.Prefix
	// ConfigRoutes are the peers' AllowedIPs, for ModeConfig.
	ConfigRoutes []netip.Prefix
	// MTU for the tunnel; 0 means DefaultMTU.
	MTU int
}

// Plan is the planner's output, and all an engine needs to set routes and
// DNS. Planning never touches the OS.
type Plan struct {
	Mode Mode `json:"mode"`
	// Routes go through the tunnel: a minimal, sorted prefix set.
	Routes []netip.Prefix `json:"routes"`
	// Bypass is what was carved out of the routes, and why, for people.
	Bypass        []Bypass     `json:"bypass,omitempty"`
	DNS           []netip.Addr `json:"dns,omitempty"`
	SearchDomains []string     `json:"search_domains,omitempty"`
	MTU           int          `json:"mtu"`
	// Warnings are policy conflicts the planner resolved, e.g. an
	// exclusion that covered the company DNS server.
	Warnings []string `json:"warnings,omitempty"`
}

// Bypass is one carve-out from the tunnel routes.
type Bypass struct {
	Prefix netip.Prefix `json:"prefix"`
	Why    string       `json:"why"` // "endpoint", "lan", "excluded"
}

// IPv4 and IPv6 default routes.
var (
	AllIPv4 = netip.MustParsePrefix("0.0.0.0/0")
	AllIPv6 = netip.MustParsePrefix("::/0")
)

// Compute turns a policy into a plan. It is pure: same policy, same plan.
//
// The order of the set arithmetic is the policy's precedence:
//  1. the mode's base set (everything; company prefixes; or AllowedIPs);
//  2. minus the LAN (full mode with AllowLAN) and the exclusions;
//  3. plus the company DNS servers, which must never leak;
//  4. minus the gateway endpoints, which must never loop.
func Compute(p Policy) (*Plan, error) {
	plan := &Plan{Mode: p.Mode, MTU: p.MTU, SearchDomains: slices.Clone(p.SearchDomains)}
	if plan.MTU == 0 {
		plan.MTU = DefaultMTU
	}
	if plan.MTU < 576 || plan.MTU > 65535 {
		return nil, fmt.Errorf("tunnel: plan: MTU %d is outside 576..65535", plan.MTU)
	}
	var b netipx.IPSetBuilder
	switch p.Mode {
	case ModeFull:
		b.AddPrefix(AllIPv4)
		b.AddPrefix(AllIPv6)
	case ModeSplit:
		if len(p.CompanyPrefixes) == 0 && len(p.CompanyDNS) == 0 {
			return nil, fmt.Errorf("tunnel: plan: split mode needs company prefixes or a company DNS server")
		}
		for _, pf := range p.CompanyPrefixes {
			b.AddPrefix(pf.Masked())
		}
	case ModeConfig:
		for _, pf := range p.ConfigRoutes {
			b.AddPrefix(pf.Masked())
		}
	default:
		return nil, fmt.Errorf("tunnel: plan: unknown mode %q (want full, split or config)", p.Mode)
	}
	for _, a := range p.Endpoints {
		if !a.IsValid() {
			return nil, fmt.Errorf("tunnel: plan: an invalid endpoint address")
		}
	}
	if p.Mode == ModeFull && p.AllowLAN {
		for _, pf := range p.LAN {
			b.RemovePrefix(pf.Masked())
			plan.Bypass = append(plan.Bypass, Bypass{pf.Masked(), "lan"})
		}
	}
	for _, pf := range p.Exclude {
		b.RemovePrefix(pf.Masked())
		plan.Bypass = append(plan.Bypass, Bypass{pf.Masked(), "excluded"})
	}
	for _, a := range p.CompanyDNS {
		a = a.Unmap()
		hp := netip.PrefixFrom(a, a.BitLen())
		for _, pf := range p.Exclude {
			if pf.Contains(a) {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("exclusion %s covers company DNS server %s; the DNS server stays in the tunnel", pf, a))
			}
		}
		b.AddPrefix(hp)
		plan.DNS = append(plan.DNS, a)
	}
	for _, a := range p.Endpoints {
		a = a.Unmap()
		hp := netip.PrefixFrom(a, a.BitLen())
		b.RemovePrefix(hp)
		plan.Bypass = append(plan.Bypass, Bypass{hp, "endpoint"})
		for _, d := range plan.DNS {
			if d == a {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("company DNS server %s is the gateway endpoint, so it is reached outside the tunnel", a))
			}
		}
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, fmt.Errorf("tunnel: plan: %w", err)
	}
	plan.Routes = set.Prefixes()
	if plan.Routes == nil {
		plan.Routes = []netip.Prefix{}
	}
	return plan, nil
}

// Contains reports whether addr would go through the tunnel.
func (p *Plan) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, r := range p.Routes {
		if r.Contains(addr) {
			return true
		}
	}
	return false
}

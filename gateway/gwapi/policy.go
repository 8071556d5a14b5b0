package gwapi

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Tunnel modes, as policy and the daemon name them.
const (
	ModeFull  = "full"  // everything through the gateway
	ModeSplit = "split" // the company's prefixes and DNS through the gateway
)

// Kill switch settings (Policy.FailClosed).
const (
	FailClosedOff      = "off"      // never: a dropped tunnel falls back to the plain network
	FailClosedOptional = "optional" // the employee chooses (the daemon's setting)
	FailClosedRequired = "required" // always: nothing leaves outside the tunnel while it is down
)

// Policy is the company's tunnel policy: the gateway's policy: section, sent
// with every enrollment and on PathDevice. The client's policy
// (client/policy) decides a tunnel mode from it and from a report.
type Policy struct {
	// AllowedModes are the modes a client may use: full, split or both.
	AllowedModes []string `json:"allowed_modes" yaml:"allowed_modes"`
	// DefaultMode is what auto picks when nothing argues otherwise.
	DefaultMode string `json:"default_mode" yaml:"default_mode"`
	// ForceFullOnUntrusted sends everything through the tunnel on a
	// network that meddles (captive portal, DNS rewritten or
	// intercepted, answers from elsewhere, open Wi-Fi), where full is
	// allowed.
	ForceFullOnUntrusted bool `json:"force_full_on_untrusted" yaml:"force_full_on_untrusted"`
	// FullNeeds is the line a full tunnel needs; below it, auto uses
	// split where allowed, so calls don't hairpin through the gateway.
	FullNeeds FullNeeds `json:"full_needs" yaml:"full_needs"`
	// AlwaysTunnel are prefixes routed through the tunnel in every mode.
	AlwaysTunnel []netip.Prefix `json:"always_tunnel,omitempty" yaml:"always_tunnel,omitempty"`
	// FailClosed is the kill switch: off, optional or required.
	FailClosed string `json:"fail_closed" yaml:"fail_closed"`
}

// FullNeeds is the line a full tunnel needs. A zero field sets no limit.
type FullNeeds struct {
	MinUpMbps   float64 `json:"min_up_mbps" yaml:"min_up_mbps"`
	MinDownMbps float64 `json:"min_down_mbps" yaml:"min_down_mbps"`
	// MaxLoadedMS is the most round-trip time to the gateway while the
	// line is busy.
	MaxLoadedMS float64 `json:"max_loaded_ms" yaml:"max_loaded_ms"`
}

// DefaultPolicy is the policy of a gateway whose config says nothing:
// both modes, full by default, full on untrusted networks, and a full
// tunnel only on a line that carries a call through the gateway (Zoom's
// 3 Mbit/s for group HD video, ITU-T G.114's 150 ms), the kill switch
// the employee's choice.
func DefaultPolicy() Policy {
	return Policy{AllowedModes: []string{ModeFull, ModeSplit}, DefaultMode: ModeFull, ForceFullOnUntrusted: true,
		FullNeeds: FullNeeds{MinUpMbps: 3, MinDownMbps: 10, MaxLoadedMS: 150}, FailClosed: FailClosedOptional}
}

// Allows reports whether the policy allows mode.
func (p Policy) Allows(mode string) bool { return slices.Contains(p.AllowedModes, mode) }

// Validate reports the first setting that cannot work.
func (p Policy) Validate() error {
	if len(p.AllowedModes) == 0 {
		return errors.New("policy.allowed_modes: name at least one of full and split")
	}
	for _, m := range p.AllowedModes {
		if m != ModeFull && m != ModeSplit {
			return fmt.Errorf("policy.allowed_modes: %q is neither full nor split", m)
		}
	}
	if !p.Allows(p.DefaultMode) {
		return fmt.Errorf("policy.default_mode: %q is not one of the allowed modes %v", p.DefaultMode, p.AllowedModes)
	}
	n := p.FullNeeds
	if n.MinUpMbps < 0 || n.MinDownMbps < 0 || n.MaxLoadedMS < 0 {
		return errors.New("policy.full_needs: limits must not be negative")
	}
	for _, a := range p.AlwaysTunnel {
		if !a.IsValid() {
			return errors.New("policy.always_tunnel: an invalid prefix")
		}
	}
	switch p.FailClosed {
	case FailClosedOff, FailClosedOptional, FailClosedRequired:
	default:
		return fmt.Errorf("policy.fail_closed: %q is not off, optional or required", p.FailClosed)
	}
	return nil
}

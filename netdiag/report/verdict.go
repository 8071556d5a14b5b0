package report

// Verdict is one finding, in words a person understands, with the
// figures and the limit behind it.
type Verdict struct {
	ID       VerdictID `json:"id"`
	Severity Severity  `json:"severity"`
	// Area is where the problem is.
	Area      Area   `json:"area"`
	Summary   string `json:"summary"`
	Evidence  string `json:"evidence"`
	Threshold string `json:"threshold"`
}

// VerdictID names a finding. The IDs are part of the schema: a reader
// (the client's policy, the tray, the helpdesk) may act on them, so an ID
// is never renamed or given a new meaning. netdiag/REPORT.md says when
// each fires.
type VerdictID string

// The verdicts, in the order REPORT.md lists them.
const (
	VerdictCaptivePortal      VerdictID = "captive_portal"
	VerdictGatewayUnreachable VerdictID = "gateway_unreachable"
	VerdictUDPBlocked         VerdictID = "udp_blocked"
	VerdictLineSaturated      VerdictID = "line_saturated"
	VerdictLineSlow           VerdictID = "line_slow"
	VerdictBufferbloat        VerdictID = "bufferbloat"
	VerdictHighLoss           VerdictID = "high_loss"
	VerdictMTULow             VerdictID = "mtu_low"
	VerdictWiFiWeak           VerdictID = "wifi_weak"
	VerdictLANLatencyHigh     VerdictID = "lan_latency_high"
	VerdictDNSSlow            VerdictID = "dns_slow"
	VerdictDNSBroken          VerdictID = "dns_broken"
	VerdictDNSCompanyBroken   VerdictID = "dns_company_broken"
	VerdictDNSFilterOff       VerdictID = "dns_filter_off"
	VerdictDNSHijack          VerdictID = "dns_hijack"
	VerdictDNSIntercepted     VerdictID = "dns_intercepted"
	VerdictDNSFilterBypassed  VerdictID = "dns_filter_bypassed"
	VerdictUntrustedNetwork   VerdictID = "untrusted_network"
	VerdictIPv6Missing        VerdictID = "ipv6_missing"
	VerdictTunnelOverheadHigh VerdictID = "tunnel_overhead_high"
)

// VerdictIDs returns every verdict ID, in the order REPORT.md lists them;
// a new slice each call.
func VerdictIDs() []VerdictID {
	return []VerdictID{VerdictCaptivePortal, VerdictGatewayUnreachable, VerdictUDPBlocked, VerdictLineSaturated,
		VerdictLineSlow, VerdictBufferbloat, VerdictHighLoss, VerdictMTULow, VerdictWiFiWeak, VerdictLANLatencyHigh,
		VerdictDNSSlow, VerdictDNSBroken, VerdictDNSCompanyBroken, VerdictDNSFilterOff, VerdictDNSHijack,
		VerdictDNSIntercepted, VerdictDNSFilterBypassed, VerdictUntrustedNetwork, VerdictIPv6Missing, VerdictTunnelOverheadHigh}
}

// Severity orders verdicts.
type Severity string

// Severities, mildest first.
const (
	SeverityInfo     Severity = "info"     // worth knowing, nothing to fix
	SeverityWarning  Severity = "warning"  // work suffers
	SeverityCritical Severity = "critical" // work, or the tunnel, fails
)

// Rank orders severities, mildest first: info (and anything unknown) is
// 0, warning 1, critical 2.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// Area is where a problem is, which says who can fix it.
type Area string

// The areas, in the order a person checks them: what this network allows,
// their own Wi-Fi and LAN, the line, DNS, and the company's side last.
const (
	AreaNetwork Area = "network" // what this network lets through
	AreaWiFi    Area = "wifi"    // the radio link
	AreaLAN     Area = "lan"     // the home network up to the router
	AreaLine    Area = "line"    // the ISP link
	AreaDNS     Area = "dns"     // name resolution
	AreaGateway Area = "gateway" // the company's gateway
)

// Areas returns every area in display order; a new slice each call.
func Areas() []Area { return []Area{AreaNetwork, AreaWiFi, AreaLAN, AreaLine, AreaDNS, AreaGateway} }

// Title names an area for a person ("Internet line"); an unknown area's
// title is its ID.
func (a Area) Title() string {
	switch a {
	case AreaNetwork:
		return "This network"
	case AreaWiFi:
		return "Wi-Fi"
	case AreaLAN:
		return "Home network"
	case AreaLine:
		return "Internet line"
	case AreaDNS:
		return "DNS"
	case AreaGateway:
		return "Company gateway"
	}
	return string(a)
}

// Suggestion is something the person can do. Choosing the tunnel's mode
// is not one: the client's policy decides it from the verdicts.
type Suggestion struct {
	ID      SuggestionID `json:"id"`
	Summary string       `json:"summary"`
	// Because lists the verdicts that led here.
	Because []VerdictID `json:"because"`
	// Evidence is the line monitor's figures, for its suggestions; nil
	// for a report's.
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence is what the line monitor saw when it made a suggestion.
type Evidence struct {
	// BaselineMS is the path's usual round trip to the gateway,
	// CurrentMS the recent median.
	BaselineMS float64 `json:"baseline_ms"`
	CurrentMS  float64 `json:"current_ms"`
	// ForS is how long the line has looked this way.
	ForS float64 `json:"for_s"`
	// DelayedPct and LostPct are shares of the recent probes.
	DelayedPct float64 `json:"delayed_pct"`
	LostPct    float64 `json:"lost_pct"`
	// OwnMbps is this computer's own traffic meanwhile; absent when
	// unknown.
	OwnMbps *float64 `json:"own_mbps,omitempty"`
	// CheckMS is the confirming active check's median round trip (0: all
	// lost, or no check).
	CheckMS float64 `json:"check_ms"`
	// Uplinks, when the computer has a second uplink, compares them as
	// measured right after the check; the suggestion names the better.
	Uplinks *UplinksReport `json:"uplinks,omitempty"`
}

// SuggestionID names an action. Like verdict IDs, suggestion IDs are
// never renamed or given a new meaning.
type SuggestionID string

// The suggestions, most useful first, as netdiag orders them.
const (
	SuggestionSignInToPortal     SuggestionID = "sign_in_to_portal"
	SuggestionUseHotspot         SuggestionID = "use_hotspot"
	SuggestionMoveCloserToRouter SuggestionID = "move_closer_to_router"
	SuggestionCheckRouter        SuggestionID = "check_router"
	SuggestionEnableSQM          SuggestionID = "enable_sqm"
	SuggestionSetTunnelMTU       SuggestionID = "set_tunnel_mtu"
	SuggestionUseCompanyDNS      SuggestionID = "use_company_dns"
	SuggestionContactHelpdesk    SuggestionID = "contact_helpdesk"
	// SuggestionPauseOwnTransfers: the line monitor found this
	// computer's own transfers filling the line.
	SuggestionPauseOwnTransfers SuggestionID = "pause_own_transfers"
)

// SuggestionIDs returns every suggestion ID, most useful first; a new
// slice each call.
func SuggestionIDs() []SuggestionID {
	return []SuggestionID{SuggestionSignInToPortal, SuggestionUseHotspot, SuggestionMoveCloserToRouter, SuggestionCheckRouter,
		SuggestionEnableSQM, SuggestionSetTunnelMTU, SuggestionUseCompanyDNS, SuggestionContactHelpdesk, SuggestionPauseOwnTransfers}
}

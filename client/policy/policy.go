// Package policy decides the tunnel mode: from the company's policy (the
// gateway's gwapi.Policy), the latest diagnostics report, the employee's
// settings and what the daemon knows of the network, it returns a mode
// and the reasons, each with the ID of the rule or verdict that decided
// and a sentence for a person.
//
// Decide is pure: no clock, no I/O. Hysteresis and the dwell time that
// keep auto from flapping work from the previous decision and a
// monotonic reading the caller passes in.
//
// Boundaries: policy imports only the wire packages (gateway/gwapi,
// netdiag/report); the daemon applies what it decides.
package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag/report"
)

// Modes an employee may ask for (Settings.Mode).
const (
	ModeAuto  = "auto"
	ModeFull  = gwapi.ModeFull
	ModeSplit = gwapi.ModeSplit
)

// Rule IDs, for reasons no verdict gave. Like verdict IDs, they are a
// contract: the tray and the helpdesk may act on them.
const (
	// RulePolicyOnly: the company allows one mode.
	RulePolicyOnly = "policy_only"
	// RuleUserChoice: the employee chose the mode.
	RuleUserChoice = "user_choice"
	// RuleUserChoiceRefused: the employee's choice is not allowed.
	RuleUserChoiceRefused = "user_choice_refused"
	// RuleNoReport: nothing is measured on this network yet.
	RuleNoReport = "no_report"
	// RuleLineUnmeasured: the report has no speed figures (a quick run).
	RuleLineUnmeasured = "line_unmeasured"
	// RuleFullNeeds: the line is below what a full tunnel needs.
	RuleFullNeeds = "full_needs"
	// RuleLineMeetsNeeds: the line carries a full tunnel.
	RuleLineMeetsNeeds = "line_meets_needs"
	// RuleDwell: a line-driven change waits out the minimum dwell time.
	RuleDwell = "dwell"
	// RuleHysteresis: the line is better, but not by enough to switch back.
	RuleHysteresis = "hysteresis"
)

// Decision parameters.
const (
	// MinDwell is how long a line-driven mode holds on one network
	// before the line may change it again. A mode switch rebinds the
	// tunnel and drops connections, so it must be rare: a few minutes is
	// longer than any burst of cross traffic a report can catch.
	MinDwell = 5 * time.Minute
	// HysteresisMargin is how far past the full tunnel's needs a line
	// must be to switch from split back to full: 25% more speed and 20%
	// less delay under load, so a line at the edge does not flip-flop.
	HysteresisMargin = 0.25
	// cappedFraction: a figure within 10% of the server's advertised cap
	// says the server, not the line, set it (netdiag reports the cap).
	cappedFraction = 0.9
)

// Settings are the employee's choices.
type Settings struct {
	// Mode is auto, full or split; empty means auto.
	Mode string `json:"mode"`
}

// Reason is why a decision went the way it did.
type Reason struct {
	// ID is the rule (Rule...) or the verdict (report.Verdict...) that
	// decided.
	ID string `json:"id"`
	// Text is a sentence for a person.
	Text string `json:"text"`
}

// Decision is a mode and why.
type Decision struct {
	Mode    string   `json:"mode"`
	Reasons []Reason `json:"reasons"`
	// Cause says what kind of reason decided, for hysteresis: the line,
	// security, the policy or the employee.
	Cause Cause `json:"cause"`
	// Suggestions are what the employee can do about what the decision
	// could not: a full tunnel on a line too poor for one, where policy
	// allows nothing else, suggests the phone's hotspot, with the
	// figures.
	Suggestions []report.Suggestion `json:"suggestions,omitempty"`
}

// Cause is what kind of reason decided a mode.
type Cause string

// Causes. Only a line-driven decision waits out dwell and hysteresis.
const (
	CausePolicy   Cause = "policy"
	CauseUser     Cause = "user"
	CauseSecurity Cause = "security"
	CauseLine     Cause = "line"
	CauseDefault  Cause = "default"
)

// Applied is a decision the daemon applied, on which network and when.
type Applied struct {
	Decision Decision
	// Network is the network's ID when it was applied.
	Network string
	// At is a monotonic reading (time since the daemon started).
	At time.Duration
}

// Network is what the daemon knows of the network it is on.
type Network struct {
	// ID identifies the network (the daemon derives it from the default
	// route's interface and router); empty when unknown. A new ID is a
	// network change: the mode is decided afresh, without dwell.
	ID string
	// Previous is the decision applied before, nil if none.
	Previous *Applied
	// Now is a monotonic reading on the same clock as Previous.At.
	Now time.Duration
}

// ErrModeNotAllowed means the employee asked for a mode the company's
// policy does not allow.
var ErrModeNotAllowed = errors.New("company policy does not allow this tunnel mode")

// Check reports whether the employee may ask for mode: auto always, full
// or split where the policy allows it. The error says what is allowed.
func Check(p gwapi.Policy, mode string) error {
	switch mode {
	case "", ModeAuto:
		return nil
	case ModeFull, ModeSplit:
		if p.Allows(mode) {
			return nil
		}
		return fmt.Errorf("%w: the company allows only %s tunnels", ErrModeNotAllowed, strings.Join(p.AllowedModes, " and "))
	}
	return fmt.Errorf("mode %q: want auto, full or split", mode)
}

// Decide returns the mode to use and why. rep may be nil (nothing
// measured yet); it should be a report of the current network.
func Decide(p gwapi.Policy, rep *report.Report, s Settings, n Network) Decision {
	d := decide(p, rep, s, 0)
	prev := n.Previous
	if prev == nil || prev.Network != n.ID || d.Mode == prev.Decision.Mode ||
		d.Cause != CauseLine || prev.Decision.Cause == CausePolicy || prev.Decision.Cause == CauseUser ||
		prev.Decision.Cause == CauseDefault {
		// A first decision, a new network, no change of mode, a change
		// for a reason that must apply at once (security, the policy,
		// the employee), or the line's first measurement after a
		// decision made without one: as decided.
		return d
	}
	// The line alone would change the mode on the same network.
	if wait := MinDwell - (n.Now - prev.At); wait > 0 {
		return Decision{Mode: prev.Decision.Mode, Cause: prev.Decision.Cause, Reasons: append([]Reason{{ID: RuleDwell,
			Text: fmt.Sprintf("keeping the %s tunnel for %s more so the mode does not flap, although %s", prev.Decision.Mode,
				wait.Round(time.Second), lowerFirst(d.Reasons[0].Text))}}, prev.Decision.Reasons...)}
	}
	if d.Mode == ModeFull && prev.Decision.Mode == ModeSplit {
		// Back to full only with a margin.
		if strict := decide(p, rep, s, HysteresisMargin); strict.Mode != ModeFull {
			return Decision{Mode: ModeSplit, Cause: CauseLine, Reasons: append([]Reason{{ID: RuleHysteresis,
				Text: "staying on the split tunnel: the line is better, but not yet 25% past what a full tunnel needs"}}, strict.Reasons...)}
		}
	}
	return d
}

// untrusted maps the verdicts that make a network untrusted to what they
// mean, most specific first; untrusted_network itself, which netdiag
// raises beside them, comes last.
var untrusted = []struct {
	id   report.VerdictID
	what string
}{
	{report.VerdictCaptivePortal, "a captive portal intercepts web traffic"},
	{report.VerdictDNSHijack, "DNS answers are rewritten"},
	{report.VerdictDNSIntercepted, "the router answers DNS queries meant for other servers"},
	{report.VerdictDNSFilterBypassed, "DNS queries bypass the company's filter"},
	{report.VerdictUntrustedNetwork, "it meddles with traffic"},
}

// decide is the decision without history; margin tightens the line's
// needs (for hysteresis).
func decide(p gwapi.Policy, rep *report.Report, s Settings, margin float64) Decision {
	if len(p.AllowedModes) == 1 {
		only := p.AllowedModes[0]
		d := Decision{Mode: only, Cause: CausePolicy, Reasons: []Reason{{ID: RulePolicyOnly, Text: fmt.Sprintf("company policy allows only %s tunnels", only)}}}
		if only == ModeFull && rep != nil {
			if low := belowNeeds(p.FullNeeds, rep, 0); low != "" {
				d.Reasons = append(d.Reasons, Reason{ID: RuleFullNeeds,
					Text: fmt.Sprintf("the line (%s) is below the company's %s for a full tunnel, but only full is allowed", low, needsText(p.FullNeeds))})
				d.Suggestions = append(d.Suggestions, report.Suggestion{ID: report.SuggestionUseHotspot,
					Summary: fmt.Sprintf("This line (%s) is below what the company's full tunnel needs (%s), and company policy allows only full: calls through the tunnel will suffer. A phone's mobile hotspot may work better for now.", low, needsText(p.FullNeeds)),
					Because: lineVerdicts(rep)})
			}
		}
		return d
	}
	var refused *Reason
	switch s.Mode {
	case ModeFull, ModeSplit:
		if p.Allows(s.Mode) {
			return Decision{Mode: s.Mode, Cause: CauseUser, Reasons: []Reason{{ID: RuleUserChoice, Text: fmt.Sprintf("you chose the %s tunnel", s.Mode)}}}
		}
		refused = &Reason{ID: RuleUserChoiceRefused, Text: fmt.Sprintf("your choice of a %s tunnel is not allowed by company policy, so the mode is chosen for you", s.Mode)}
	}
	d := auto(p, rep, margin)
	if refused != nil {
		d.Reasons = append([]Reason{*refused}, d.Reasons...)
	}
	return d
}

func auto(p gwapi.Policy, rep *report.Report, margin float64) Decision {
	def := p.DefaultMode
	if rep == nil {
		return Decision{Mode: def, Cause: CauseDefault, Reasons: []Reason{{ID: RuleNoReport,
			Text: fmt.Sprintf("nothing is measured on this network yet → the company default, %s", def)}}}
	}
	if p.ForceFullOnUntrusted && p.Allows(ModeFull) {
		for _, u := range untrusted {
			if v := find(rep, u.id); v != nil {
				return Decision{Mode: ModeFull, Cause: CauseSecurity, Reasons: []Reason{{ID: string(u.id),
					Text: fmt.Sprintf("this network is untrusted (%s) → full tunnel", u.what)}}}
			}
		}
	}
	if rep.Throughput == nil {
		return Decision{Mode: def, Cause: CauseDefault, Reasons: []Reason{{ID: RuleLineUnmeasured,
			Text: fmt.Sprintf("the line's speed is not measured yet (a quick check) → the company default, %s", def)}}}
	}
	if p.Allows(ModeSplit) {
		if low := belowNeeds(p.FullNeeds, rep, margin); low != "" {
			return Decision{Mode: ModeSplit, Cause: CauseLine, Reasons: []Reason{{ID: RuleFullNeeds,
				Text: fmt.Sprintf("the line is %s, below the company's %s for a full tunnel → split, so calls don't hairpin through the gateway", low, needsText(p.FullNeeds))}}}
		}
	}
	return Decision{Mode: def, Cause: CauseLine, Reasons: []Reason{{ID: RuleLineMeetsNeeds,
		Text: fmt.Sprintf("the line (%s) meets the company's %s for a full tunnel → the company default, %s", lineText(rep), needsText(p.FullNeeds), def)}}}
}

func find(rep *report.Report, id report.VerdictID) *report.Verdict {
	for i := range rep.Verdicts {
		if rep.Verdicts[i].ID == id {
			return &rep.Verdicts[i]
		}
	}
	return nil
}

// loadedMS is the worst loaded round trip the report measured, 0 if none.
func loadedMS(rep *report.Report) float64 {
	if rep.Responsiveness == nil {
		return 0
	}
	return max(rep.Responsiveness.LoadedDownMS, rep.Responsiveness.LoadedUpMS)
}

// belowNeeds describes the figures of rep that fall short of needs,
// tightened by margin; empty when the line meets them (or nothing was
// measured). A figure at the server's cap is the server's, not the
// line's, and never falls short.
func belowNeeds(needs gwapi.FullNeeds, rep *report.Report, margin float64) string {
	tp := rep.Throughput
	if tp == nil {
		return ""
	}
	capped := func(v float64) bool { return tp.ServerCapMbps > 0 && v >= cappedFraction*tp.ServerCapMbps }
	var low []string
	if needs.MinUpMbps > 0 && tp.UploadMbps < needs.MinUpMbps*(1+margin) && !capped(tp.UploadMbps) {
		low = append(low, fmt.Sprintf("%s up", mbps(tp.UploadMbps)))
	}
	if needs.MinDownMbps > 0 && tp.DownloadMbps < needs.MinDownMbps*(1+margin) && !capped(tp.DownloadMbps) {
		low = append(low, fmt.Sprintf("%s down", mbps(tp.DownloadMbps)))
	}
	if l := loadedMS(rep); needs.MaxLoadedMS > 0 && l > needs.MaxLoadedMS*(1-margin) {
		low = append(low, fmt.Sprintf("%.0f ms under load", l))
	}
	return joinAnd(low)
}

func lineText(rep *report.Report) string {
	tp := rep.Throughput
	s := fmt.Sprintf("%s down, %s up", mbps(tp.DownloadMbps), mbps(tp.UploadMbps))
	if l := loadedMS(rep); l > 0 {
		s += fmt.Sprintf(", %.0f ms under load", l)
	}
	return s
}

func needsText(n gwapi.FullNeeds) string {
	var parts []string
	if n.MinDownMbps > 0 {
		parts = append(parts, fmt.Sprintf("%s down", mbps(n.MinDownMbps)))
	}
	if n.MinUpMbps > 0 {
		parts = append(parts, fmt.Sprintf("%s up", mbps(n.MinUpMbps)))
	}
	if n.MaxLoadedMS > 0 {
		parts = append(parts, fmt.Sprintf("%.0f ms", n.MaxLoadedMS))
	}
	if len(parts) == 0 {
		return "no minimum"
	}
	return strings.Join(parts, " / ")
}

func mbps(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f Mbit/s", v)
	}
	return fmt.Sprintf("%.0f Mbit/s", v)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " with " + s[len(s)-1]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// lineVerdicts are the report's verdicts about the line's capacity and
// latency under load, which a hotspot suggestion rests on.
func lineVerdicts(rep *report.Report) []report.VerdictID {
	out := []report.VerdictID{}
	for _, v := range rep.Verdicts {
		if v.Area == report.AreaLine {
			out = append(out, v.ID)
		}
	}
	return out
}

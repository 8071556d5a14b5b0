package monitor

import (
	"fmt"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// SuggestEvery is the advisor's rate limit: after a suggestion, the same
// one is not made again for this long, even if it was withdrawn meanwhile.
const SuggestEvery = 15 * time.Minute

// recheckAfter paces active checks that did not confirm a saturation.
const recheckAfter = time.Minute

// Step is what the advisor asks the daemon to do after a finding.
type Step struct {
	// Check: confirm the saturation with an active check, then call
	// Confirm with its result.
	Check bool
	// Suggest is a suggestion to publish.
	Suggest *report.Suggestion
	// Clear is a suggestion to withdraw (suggestion_cleared), with Why.
	Clear report.SuggestionID
	Why   string
}

// Advisor turns findings into suggestions without nagging: one at a
// time, confirmed by an active check before a hotspot is suggested,
// withdrawn when the line recovers, rate-limited, and snoozable. It is
// pure (time comes in as monotonic readings) and not safe for concurrent
// use: the daemon serializes its calls.
type Advisor struct {
	Config  Config
	active  report.SuggestionID
	last    map[report.SuggestionID]time.Duration // when each was last made
	snoozed map[report.SuggestionID]time.Duration // until when
	checked time.Duration                         // when a check last failed to confirm
}

// Active is the suggestion standing, "" if none.
func (a *Advisor) Active() report.SuggestionID { return a.active }

// SnoozedUntil is when a snooze of id ends, 0 if none.
func (a *Advisor) SnoozedUntil(id report.SuggestionID, now time.Duration) time.Duration {
	if u := a.snoozed[id]; u > now {
		return u
	}
	return 0
}

// Snooze holds id back until now+d; a standing id is withdrawn.
func (a *Advisor) Snooze(id report.SuggestionID, now, d time.Duration) Step {
	if a.snoozed == nil {
		a.snoozed = map[report.SuggestionID]time.Duration{}
	}
	a.snoozed[id] = now + d
	if a.active == id {
		a.active = ""
		return Step{Clear: id, Why: fmt.Sprintf("snoozed for %s", d.Round(time.Minute))}
	}
	return Step{}
}

func (a *Advisor) allowed(id report.SuggestionID, now time.Duration) bool {
	if a.snoozed[id] > now {
		return false
	}
	last, ok := a.last[id]
	return !ok || now-last >= SuggestEvery
}

func (a *Advisor) made(id report.SuggestionID, now time.Duration) {
	if a.last == nil {
		a.last = map[report.SuggestionID]time.Duration{}
	}
	a.last[id], a.active = now, id
}

// Observe takes the monitor's latest finding.
func (a *Advisor) Observe(f Finding, now time.Duration) Step {
	switch a.active {
	case report.SuggestionUseHotspot:
		if f.Kind == KindSaturated || f.Kind == KindBloated || !recovered(f) {
			return Step{}
		}
		a.active = ""
		return Step{Clear: report.SuggestionUseHotspot, Why: cleared(f)}
	case report.SuggestionPauseOwnTransfers:
		if f.Kind == KindOwnLoad || f.Kind == KindBloated || !recovered(f) {
			return Step{}
		}
		a.active = ""
		return Step{Clear: report.SuggestionPauseOwnTransfers, Why: cleared(f)}
	}
	switch f.Kind {
	case KindSaturated:
		if a.allowed(report.SuggestionUseHotspot, now) && (a.checked == 0 || now-a.checked >= recheckAfter) {
			return Step{Check: true}
		}
	case KindOwnLoad:
		if a.allowed(report.SuggestionPauseOwnTransfers, now) {
			a.made(report.SuggestionPauseOwnTransfers, now)
			return Step{Suggest: &report.Suggestion{ID: report.SuggestionPauseOwnTransfers,
				Summary: fmt.Sprintf("This computer's own transfers are filling the line: %s. Pausing the big download or upload will help more than a hotspot.",
					f.Text()), Because: []report.VerdictID{report.VerdictLineSaturated}, Evidence: evidence(f, 0)}}
		}
	}
	return Step{}
}

// Confirm takes an active check's median round trip to the gateway
// (zero when every probe was lost): a check that is delayed against the
// baseline, or lost, confirms the saturation f reported.
func (a *Advisor) Confirm(f Finding, check time.Duration, now time.Duration) Step {
	if a.active != "" || f.Kind != KindSaturated || !a.allowed(report.SuggestionUseHotspot, now) {
		return Step{}
	}
	if check != 0 && !a.Config.delayed(check, f.Baseline) {
		a.checked = now
		return Step{}
	}
	a.made(report.SuggestionUseHotspot, now)
	text := "Your home line is saturated: " + f.Text()
	if f.OwnMbps >= 0 {
		text += ". Something else on your network is using the line."
	} else {
		text += "."
	}
	return Step{Suggest: &report.Suggestion{ID: report.SuggestionUseHotspot,
		Summary: text + HotspotAdvice,
		Because: []report.VerdictID{report.VerdictLineSaturated}, Evidence: evidence(f, check)}}
}

// HotspotAdvice ends a use_hotspot suggestion's summary; a comparison of
// uplinks replaces it with its own recommendation.
const HotspotAdvice = " A phone hotspot may work better for now."

// delayed is Detect's test of one round trip against a baseline.
func (c Config) delayed(rtt, base time.Duration) bool {
	return base > 0 && rtt-base > c.DelayedOver && float64(rtt-base) > c.DelayedFactor*float64(base)
}

// recovered: a standing suggestion is withdrawn only once the latest
// samples have come on time for a while (quietRun of them, 10 s), not
// at the first window under the bloat threshold, so it does not flicker.
// A finding of another kind (the load changed hands) counts at once.
func recovered(f Finding) bool {
	return f.Kind == KindSaturated || f.Kind == KindOwnLoad || f.OnTime >= quietRun
}

func cleared(f Finding) string {
	switch f.Kind {
	case KindOK:
		return fmt.Sprintf("the line has recovered: latency is %s again", msText(f.Current))
	case KindOwnLoad:
		return "the load is now this computer's own"
	case KindSaturated:
		return "the load is no longer this computer's own"
	case KindLossy:
		return "latency is back to normal (but probes are being lost)"
	}
	return "the monitor no longer sees it"
}

func evidence(f Finding, check time.Duration) *report.Evidence {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	e := &report.Evidence{BaselineMS: ms(f.Baseline), CurrentMS: ms(f.Current), ForS: f.For.Seconds(),
		DelayedPct: f.Delayed * 100, LostPct: f.Lost * 100, CheckMS: ms(check)}
	if f.OwnMbps >= 0 {
		own := f.OwnMbps
		e.OwnMbps = &own
	}
	return e
}

package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag/report"
)

// line is a full report of a line: down and up Mbit/s, loaded RTT.
func line(down, up, loaded float64, verdicts ...report.VerdictID) *report.Report {
	r := &report.Report{Throughput: &report.ThroughputReport{DownloadMbps: down, UploadMbps: up},
		Responsiveness: &report.ResponsivenessReport{LoadedDownMS: loaded, LoadedUpMS: loaded / 2}}
	for _, v := range verdicts {
		r.Verdicts = append(r.Verdicts, report.Verdict{ID: v})
	}
	return r
}

// quick is a quick report: verdicts, no speed figures.
func quick(verdicts ...report.VerdictID) *report.Report {
	r := &report.Report{}
	for _, v := range verdicts {
		r.Verdicts = append(r.Verdicts, report.Verdict{ID: v})
	}
	return r
}

func only(modes ...string) gwapi.Policy {
	p := gwapi.DefaultPolicy()
	p.AllowedModes = modes
	p.DefaultMode = modes[0]
	return p
}

func TestDecide(t *testing.T) {
	def := gwapi.DefaultPolicy() // full and split, full by default, needs 10/3 Mbit/s and 150 ms
	splitDefault := def
	splitDefault.DefaultMode = ModeSplit
	noForce := def
	noForce.ForceFullOnUntrusted = false
	for _, tc := range []struct {
		name     string
		p        gwapi.Policy
		rep      *report.Report
		s        Settings
		mode     string
		id       string
		cause    Cause
		contains []string
	}{
		{"nothing measured: the default", def, nil, Settings{}, ModeFull, RuleNoReport, CauseDefault, []string{"full"}},
		{"a good line: the default", def, line(95, 19, 40), Settings{}, ModeFull, RuleLineMeetsNeeds, CauseLine, []string{"95 Mbit/s down", "40 ms under load"}},
		{"a good line, split by default", splitDefault, line(95, 19, 40), Settings{}, ModeSplit, RuleLineMeetsNeeds, CauseLine, nil},
		{"slow up and bloated: split, with the figures", def, line(15, 0.9, 300), Settings{}, ModeSplit, RuleFullNeeds, CauseLine,
			[]string{"0.9 Mbit/s up", "300 ms under load", "10 Mbit/s down / 3.0 Mbit/s up / 150 ms", "hairpin"}},
		{"loaded delay alone: split", def, line(95, 19, 250), Settings{}, ModeSplit, RuleFullNeeds, CauseLine, []string{"250 ms under load"}},
		{"a figure at the server's cap is not the line's; the other one is", def,
			func() *report.Report { r := line(4.8, 0.9, 40); r.Throughput.ServerCapMbps = 5; return r }(), Settings{}, ModeSplit, RuleFullNeeds, CauseLine, []string{"is 0.9 Mbit/s up, below"}},
		{"at the server's cap on both: the line meets the needs", def,
			func() *report.Report { r := line(2, 2, 40); r.Throughput.ServerCapMbps = 2; return r }(), Settings{}, ModeFull, RuleLineMeetsNeeds, CauseLine, nil},
		{"DNS rewritten: full at once", def, line(15, 0.9, 300, report.VerdictDNSHijack, report.VerdictUntrustedNetwork), Settings{}, ModeFull, string(report.VerdictDNSHijack), CauseSecurity,
			[]string{"untrusted (DNS answers are rewritten) → full tunnel"}},
		{"captive portal on a quick check: full", def, quick(report.VerdictCaptivePortal, report.VerdictUntrustedNetwork), Settings{}, ModeFull, string(report.VerdictCaptivePortal), CauseSecurity, []string{"captive portal"}},
		{"intercepted DNS: full", def, quick(report.VerdictDNSIntercepted, report.VerdictUntrustedNetwork), Settings{}, ModeFull, string(report.VerdictDNSIntercepted), CauseSecurity, nil},
		{"untrusted, but the policy does not force", noForce, line(15, 0.9, 300, report.VerdictDNSHijack, report.VerdictUntrustedNetwork), Settings{}, ModeSplit, RuleFullNeeds, CauseLine, nil},
		{"untrusted, split only: split", only(ModeSplit), quick(report.VerdictDNSHijack), Settings{}, ModeSplit, RulePolicyOnly, CausePolicy, []string{"only split"}},
		{"quick check: the default", def, quick(), Settings{}, ModeFull, RuleLineUnmeasured, CauseDefault, []string{"quick"}},
		{"only full on a bad line: full, and says so", only(ModeFull), line(15, 0.9, 300), Settings{}, ModeFull, RulePolicyOnly, CausePolicy,
			[]string{"only full", "0.9 Mbit/s up", "but only full is allowed"}},
		{"the employee's split wins where allowed", def, line(95, 19, 40), Settings{Mode: ModeSplit}, ModeSplit, RuleUserChoice, CauseUser, nil},
		{"the employee's full wins over a bad line", def, line(15, 0.9, 300), Settings{Mode: ModeFull}, ModeFull, RuleUserChoice, CauseUser, nil},
		{"the employee's split wins on an untrusted network too", def, line(95, 19, 40, report.VerdictDNSHijack), Settings{Mode: ModeSplit}, ModeSplit, RuleUserChoice, CauseUser, nil},
		{"policy only full beats the employee", only(ModeFull), line(95, 19, 40), Settings{Mode: ModeSplit}, ModeFull, RulePolicyOnly, CausePolicy, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.p, tc.rep, tc.s, Network{ID: "home"})
			if d.Mode != tc.mode || d.Reasons[0].ID != tc.id || d.Cause != tc.cause {
				t.Fatalf("Decide = %s (%s) %+v, want %s by %s (%s)", d.Mode, d.Cause, d.Reasons, tc.mode, tc.id, tc.cause)
			}
			text := ""
			for _, r := range d.Reasons {
				text += r.Text + "; "
			}
			for _, c := range tc.contains {
				if !strings.Contains(text, c) {
					t.Errorf("reasons %q lack %q", text, c)
				}
			}
		})
	}
}

func TestRefusedChoiceSaysSo(t *testing.T) {
	p := gwapi.DefaultPolicy()
	p.AllowedModes = []string{ModeFull, ModeSplit}
	// Check refuses a mode the policy does not allow, with what is allowed.
	if err := Check(only(ModeFull), ModeSplit); !errors.Is(err, ErrModeNotAllowed) || !strings.Contains(err.Error(), "only full") {
		t.Fatalf("Check = %v", err)
	}
	for _, m := range []string{"", ModeAuto, ModeFull, ModeSplit} {
		if err := Check(p, m); err != nil {
			t.Errorf("Check(%q) = %v", m, err)
		}
	}
	if err := Check(p, "half"); err == nil || errors.Is(err, ErrModeNotAllowed) {
		t.Errorf("Check(half) = %v, want a bad-mode error", err)
	}
	// If a refused choice reaches Decide anyway (settings from before a
	// policy change), auto decides and the first reason says why.
	d := decide(gwapi.Policy{AllowedModes: []string{ModeFull, ModeSplit}, DefaultMode: ModeFull, FailClosed: "off"}, line(95, 19, 40), Settings{Mode: "full"}, 0)
	if d.Cause != CauseUser {
		t.Fatalf("an allowed choice: %+v", d)
	}
	d = decide(gwapi.Policy{AllowedModes: []string{ModeFull, "other"}, DefaultMode: ModeFull, FailClosed: "off"}, line(95, 19, 40), Settings{Mode: ModeSplit}, 0)
	if d.Reasons[0].ID != RuleUserChoiceRefused || d.Mode != ModeFull {
		t.Fatalf("a refused choice: %+v", d)
	}
}

// TestOnlyFullOnAPoorLineSuggestsTheHotspot: where policy allows only
// full and the line is below what full needs, the decision carries a
// use_hotspot suggestion with the figures; on a good line, or where split
// was allowed, none.
func TestOnlyFullOnAPoorLineSuggestsTheHotspot(t *testing.T) {
	d := Decide(only(ModeFull), line(15, 0.9, 300), Settings{}, Network{ID: "home"})
	if len(d.Suggestions) != 1 || d.Suggestions[0].ID != report.SuggestionUseHotspot ||
		!strings.Contains(d.Suggestions[0].Summary, "0.9 Mbit/s up") || !strings.Contains(d.Suggestions[0].Summary, "300 ms under load") {
		t.Fatalf("only full, poor line: %+v", d.Suggestions)
	}
	if d := Decide(only(ModeFull), line(95, 19, 40), Settings{}, Network{ID: "home"}); len(d.Suggestions) != 0 {
		t.Errorf("only full, good line: %+v", d.Suggestions)
	}
	if d := Decide(gwapi.DefaultPolicy(), line(15, 0.9, 300), Settings{}, Network{ID: "home"}); d.Mode != ModeSplit || len(d.Suggestions) != 0 {
		t.Errorf("split allowed, poor line: %s %+v", d.Mode, d.Suggestions)
	}
}

// TestAutoDoesNotFlap: on one network a line-driven change waits out the
// dwell time, and back to full needs a margin; a network change or a
// security reason applies at once.
func TestAutoDoesNotFlap(t *testing.T) {
	p := gwapi.DefaultPolicy()
	bad, edge, good := line(15, 0.9, 300), line(11, 3.2, 140), line(95, 19, 40)
	at := func(d Decision, net string, when time.Duration) *Applied {
		return &Applied{Decision: d, Network: net, At: when}
	}
	split := Decide(p, bad, Settings{}, Network{ID: "home"})
	full := Decide(p, good, Settings{}, Network{ID: "home"})
	if split.Mode != ModeSplit || full.Mode != ModeFull {
		t.Fatalf("setup: %s %s", split.Mode, full.Mode)
	}
	for _, tc := range []struct {
		name string
		rep  *report.Report
		n    Network
		mode string
		id   string
	}{
		{"the line recovers within the dwell: hold split", good, Network{ID: "home", Previous: at(split, "home", 0), Now: time.Minute}, ModeSplit, RuleDwell},
		{"the line recovers after the dwell: full", good, Network{ID: "home", Previous: at(split, "home", 0), Now: MinDwell}, ModeFull, RuleLineMeetsNeeds},
		{"just past the needs after the dwell: hysteresis holds split", edge, Network{ID: "home", Previous: at(split, "home", 0), Now: time.Hour}, ModeSplit, RuleHysteresis},
		{"the line degrades within the dwell: hold full", bad, Network{ID: "home", Previous: at(full, "home", 0), Now: time.Minute}, ModeFull, RuleDwell},
		{"the line degrades after the dwell: split", bad, Network{ID: "home", Previous: at(full, "home", 0), Now: 6 * time.Minute}, ModeSplit, RuleFullNeeds},
		{"a new network: at once", good, Network{ID: "cafe", Previous: at(split, "home", 0), Now: time.Second}, ModeFull, RuleLineMeetsNeeds},
		{"untrusted now: full at once", line(15, 0.9, 300, report.VerdictDNSHijack), Network{ID: "home", Previous: at(split, "home", 0), Now: time.Second}, ModeFull, string(report.VerdictDNSHijack)},
		{"the first measurement after a quick check: at once", bad, Network{ID: "home", Previous: at(Decide(p, quick(), Settings{}, Network{ID: "home"}), "home", 0), Now: time.Second}, ModeSplit, RuleFullNeeds},
		{"the employee's choice ends: auto at once", bad, Network{ID: "home", Previous: at(Decision{Mode: ModeFull, Cause: CauseUser}, "home", 0), Now: time.Second}, ModeSplit, RuleFullNeeds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(p, tc.rep, Settings{}, tc.n)
			if d.Mode != tc.mode || d.Reasons[0].ID != tc.id {
				t.Fatalf("Decide = %s %+v, want %s by %s", d.Mode, d.Reasons, tc.mode, tc.id)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := gwapi.DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*gwapi.Policy){
		func(p *gwapi.Policy) { p.AllowedModes = nil },
		func(p *gwapi.Policy) { p.AllowedModes = []string{"half"} },
		func(p *gwapi.Policy) { p.AllowedModes = []string{ModeSplit} }, // default full is not allowed
		func(p *gwapi.Policy) { p.FailClosed = "sometimes" },
		func(p *gwapi.Policy) { p.FullNeeds.MinUpMbps = -1 },
	} {
		p := gwapi.DefaultPolicy()
		bad(&p)
		if p.Validate() == nil {
			t.Errorf("%+v validated", p)
		}
	}
}

package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

func finding(kind Kind, own float64) Finding {
	return Finding{Kind: kind, Baseline: 18 * time.Millisecond, Current: 243 * time.Millisecond, For: 2 * time.Minute,
		Delayed: 0.9, OwnMbps: own, Samples: 30}
}

// TestAdvisor: a saturation is checked before a hotspot is suggested;
// the suggestion stands until the line recovers, then is withdrawn; it
// is not made again within SuggestEvery; a snooze holds it back and
// withdraws a standing one; our own load gets its own advice, never the
// hotspot.
func TestAdvisor(t *testing.T) {
	sat, own, ok := finding(KindSaturated, 0.4), finding(KindOwnLoad, 38), Finding{Kind: KindOK, Current: 19 * time.Millisecond, Samples: 30, OnTime: 10}
	justUnder := Finding{Kind: KindOK, Current: 150 * time.Millisecond, Samples: 30, OnTime: 2}
	min := time.Minute
	type call struct {
		at      time.Duration
		f       Finding
		confirm time.Duration // > 0 (or lost): Confirm with this check after Observe asked
		snooze  time.Duration // > 0: Snooze the hotspot first
		want    string        // "check", "suggest ID", "clear ID", or ""
	}
	for _, tc := range []struct {
		name  string
		calls []call
	}{
		{"confirmed, suggested once, cleared on recovery", []call{
			{at: 1 * min, f: finding(KindBloated, 0.4), want: ""},
			{at: 2 * min, f: sat, want: "check"},
			{at: 2 * min, f: sat, confirm: 250 * time.Millisecond, want: "suggest use_hotspot"},
			{at: 3 * min, f: sat, want: ""},
			{at: 4 * min, f: finding(KindBloated, 0.4), want: ""},
			{at: 4*min + 10*time.Second, f: justUnder, want: ""}, // no flicker: not on time for long yet
			{at: 5 * min, f: ok, want: "clear use_hotspot"},
			{at: 6 * min, f: sat, want: ""}, // rate-limited: 15 min
			{at: 18 * min, f: sat, want: "check"},
		}},
		{"a check on time does not confirm, and is not repeated for a minute", []call{
			{at: 2 * min, f: sat, want: "check"},
			{at: 2 * min, f: sat, confirm: 20 * time.Millisecond, want: ""},
			{at: 2*min + 30*time.Second, f: sat, want: ""},
			{at: 3*min + time.Second, f: sat, want: "check"},
		}},
		{"a check with every probe lost confirms", []call{
			{at: 2 * min, f: sat, want: "check"},
			{at: 2 * min, f: sat, confirm: -1, want: "suggest use_hotspot"},
		}},
		{"snoozed: nothing for the hour; a standing one is withdrawn", []call{
			{at: 2 * min, f: sat, want: "check"},
			{at: 2 * min, f: sat, confirm: 250 * time.Millisecond, want: "suggest use_hotspot"},
			{at: 3 * min, f: sat, snooze: time.Hour, want: "clear use_hotspot"},
			{at: 30 * min, f: sat, want: ""},
			{at: 64 * min, f: sat, want: "check"},
		}},
		{"our own load: its own advice, never the hotspot", []call{
			{at: 2 * min, f: own, want: "suggest pause_own_transfers"},
			{at: 3 * min, f: own, want: ""},
			{at: 4 * min, f: ok, want: "clear pause_own_transfers"},
		}},
		{"own load turns into someone else's: withdrawn, then checked", []call{
			{at: 2 * min, f: own, want: "suggest pause_own_transfers"},
			{at: 3 * min, f: sat, want: "clear pause_own_transfers"},
			{at: 3 * min, f: sat, want: "check"},
		}},
		{"lossy is not a saturation", []call{
			{at: 2 * min, f: Finding{Kind: KindLossy, Lost: 0.3, Samples: 30}, want: ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Advisor{Config: DefaultConfig()}
			for i, c := range tc.calls {
				var st Step
				switch {
				case c.snooze > 0:
					st = a.Snooze(report.SuggestionUseHotspot, c.at, c.snooze)
				case c.confirm != 0:
					check := c.confirm
					if check < 0 {
						check = 0
					}
					st = a.Confirm(c.f, check, c.at)
				default:
					st = a.Observe(c.f, c.at)
				}
				got := ""
				switch {
				case st.Check:
					got = "check"
				case st.Suggest != nil:
					got = "suggest " + string(st.Suggest.ID)
				case st.Clear != "":
					got = "clear " + string(st.Clear)
				}
				if got != c.want {
					t.Fatalf("call %d at %v (%s): got %q, want %q", i, c.at, c.f.Kind, got, c.want)
				}
			}
		})
	}
}

// TestAdvisorTexts: the suggestions carry the figures, in words and as
// evidence.
func TestAdvisorTexts(t *testing.T) {
	a := &Advisor{Config: DefaultConfig()}
	sat := finding(KindSaturated, 0.4)
	if st := a.Observe(sat, time.Minute); !st.Check {
		t.Fatal("no check asked")
	}
	st := a.Confirm(sat, 250*time.Millisecond, time.Minute)
	if st.Suggest == nil {
		t.Fatal("not confirmed")
	}
	want := "Your home line is saturated: latency rose from 18 ms to 243 ms for the last 2 minutes, while this computer used only 0.4 Mbit/s. " +
		"Something else on your network is using the line. A phone hotspot may work better for now."
	if st.Suggest.Summary != want {
		t.Fatalf("summary:\n%s\nwant\n%s", st.Suggest.Summary, want)
	}
	e := st.Suggest.Evidence
	if e == nil || e.BaselineMS != 18 || e.CurrentMS != 243 || e.ForS != 120 || e.CheckMS != 250 || e.OwnMbps == nil || *e.OwnMbps != 0.4 {
		t.Fatalf("evidence %+v", e)
	}
	st = a.Observe(Finding{Kind: KindOK, Current: 19 * time.Millisecond, Samples: 30, OnTime: 5}, 2*time.Minute)
	if st.Clear != report.SuggestionUseHotspot || !strings.Contains(st.Why, "recovered: latency is 19 ms") {
		t.Fatalf("clear %+v", st)
	}
	b := &Advisor{Config: DefaultConfig()}
	st = b.Observe(finding(KindOwnLoad, 38), time.Minute)
	if st.Suggest == nil || !strings.Contains(st.Suggest.Summary, "moved 38.0 Mbit/s") || strings.Contains(st.Suggest.Summary, "hotspot may") {
		t.Fatalf("own load: %+v", st.Suggest)
	}
}

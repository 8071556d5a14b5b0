package monitor

import (
	"strings"
	"testing"
	"time"
)

const every = 2 * time.Second // the sampler's pace

// series is samples every 2 s from 0 to d, each made by at.
func series(d time.Duration, at func(t time.Duration) Sample) []Sample {
	var out []Sample
	for t := time.Duration(0); t <= d; t += every {
		s := at(t)
		s.At = t
		out = append(out, s)
	}
	return out
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// line is an 18 ms path, with 240 ms from loadFrom to loadTo while the
// machine itself moves own Mbit/s (0.4 at rest).
func line(loadFrom, loadTo time.Duration, own float64) func(time.Duration) Sample {
	return func(t time.Duration) Sample {
		if t >= loadFrom && t < loadTo {
			return Sample{RTT: ms(240 + int(t/time.Second)%7), OwnMbps: own}
		}
		return Sample{RTT: ms(18 + int(t/time.Second)%3), OwnMbps: 0.4}
	}
}

func TestDetect(t *testing.T) {
	cfg := DefaultConfig()
	min := time.Minute
	for _, tc := range []struct {
		name    string
		samples []Sample
		want    Kind
		text    string // what Text must say, if anything
	}{
		{"nothing yet", nil, KindUnknown, "not enough"},
		{"too few samples", series(10*time.Second, line(-1, -1, 0)), KindUnknown, ""},
		{"a quiet line", series(10*min, line(-1, -1, 0)), KindOK, "as usual"},
		{"one burst of 6 s is not a saturation", series(10*min, line(5*min, 5*min+6*time.Second, 0.4)), KindOK, ""},
		{"bursts every 30 s are not a saturation", series(10*min, func(t time.Duration) Sample {
			if t%(30*time.Second) < 4*time.Second {
				return Sample{RTT: ms(250), OwnMbps: 0.4}
			}
			return Sample{RTT: ms(18), OwnMbps: 0.4}
		}), KindOK, ""},
		{"loaded for 20 s: too soon to say", series(5*min+20*time.Second, line(5*min, time.Hour, 0.4)), KindOK, ""},
		{"loaded for 36 s: bloated, not yet saturated", series(5*min+36*time.Second, line(5*min, time.Hour, 0.4)), KindBloated, "up from 18 ms"},
		{"loaded by someone else for 20 minutes: still saturated, from the same baseline", series(25*min, line(5*min, time.Hour, 0.4)), KindSaturated, "from 18 ms to 243 ms for the last 20 minutes"},
		{"someone else loads the line for 2 minutes", series(7*min, line(5*min, time.Hour, 0.4)), KindSaturated,
			"latency rose from 18 ms to 243 ms for the last 2 minutes, while this computer used only 0.4 Mbit/s"},
		{"saturated within a minute of the load starting", series(5*min+50*time.Second, line(5*min, time.Hour, 0.4)), KindSaturated, "for the last 50 s"},
		{"an earlier burst does not date the load", series(5*min+36*time.Second, func(t time.Duration) Sample {
			if t >= 4*min+30*time.Second && t < 4*min+34*time.Second {
				return Sample{RTT: ms(250), OwnMbps: 0.4}
			}
			return line(5*min, time.Hour, 0.4)(t)
		}), KindBloated, "up from 18 ms"},
		{"our own download loads it", series(7*min, line(5*min, time.Hour, 38)), KindOwnLoad, "the load is its own"},
		{"cleared within 60 s of the load stopping", series(9*min+40*time.Second, line(5*min, 9*min, 0.4)), KindOK, ""},
		{"a slow drift over half an hour is followed, not flagged", series(30*min, func(t time.Duration) Sample {
			return Sample{RTT: ms(20 + int(t/time.Minute)*2), OwnMbps: 0.4} // 20 → 80 ms
		}), KindOK, ""},
		{"loss without delay is lossy, not saturated", series(10*min, func(t time.Duration) Sample {
			if int(t/every)%3 == 0 {
				return Sample{Lost: true, OwnMbps: 0.4}
			}
			return Sample{RTT: ms(18), OwnMbps: 0.4}
		}), KindLossy, "33% of probes were lost"},
		{"a sleep (a gap) ends a saturation: nothing is sustained across it", append(series(7*min, line(3*min, time.Hour, 0.4)),
			series(40*time.Second, line(0, time.Hour, 0.4))...), KindBloated, "up from 18 ms"},
		{"own traffic unknown: saturated, without the claim", series(7*min, func(t time.Duration) Sample {
			s := line(5*min, time.Hour, 0)(t)
			s.OwnMbps = -1
			return s
		}), KindSaturated, "for the last 2 minutes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples := tc.samples
			if strings.HasPrefix(tc.name, "a sleep") {
				// The second part comes an hour later on the monotonic
				// clock.
				n := len(series(7*min, line(0, 0, 0)))
				for i := n; i < len(samples); i++ {
					samples[i].At += 7*min + time.Hour
				}
			}
			f := Detect(cfg, samples)
			if f.Kind != tc.want {
				t.Fatalf("Detect = %s (%s; baseline %v, current %v, delayed %.2f, lost %.2f, for %v), want %s",
					f.Kind, f.Text(), f.Baseline, f.Current, f.Delayed, f.Lost, f.For, tc.want)
			}
			if tc.text != "" && !strings.Contains(f.Text(), tc.text) {
				t.Fatalf("Text = %q, want it to say %q", f.Text(), tc.text)
			}
			if strings.Contains(tc.name, "unknown") && strings.Contains(f.Text(), "only") {
				t.Fatalf("Text = %q claims a figure it does not have", f.Text())
			}
		})
	}
}

// TestDetectIsPure: the same samples give the same finding, and a
// finding never depends on samples after the last.
func TestDetectIsPure(t *testing.T) {
	s := series(7*time.Minute, line(5*time.Minute, time.Hour, 0.4))
	a, b := Detect(DefaultConfig(), s), Detect(DefaultConfig(), append([]Sample(nil), s...))
	if a != b {
		t.Fatalf("%+v != %+v", a, b)
	}
}

// TestBaselineFallsFastRisesSlowly: a lower sample is the baseline at
// once; it rises by a tenth of the way each minute, each ten while the
// line is bloated.
func TestBaselineFallsFastRisesSlowly(t *testing.T) {
	cfg := DefaultConfig()
	var b Baseline
	b.Observe(cfg, ms(40), ms(40), 0, false)
	b.Observe(cfg, ms(18), ms(18), time.Second, false)
	if b.Value() != ms(18) {
		t.Fatalf("falls at once: %v", b.Value())
	}
	b.Observe(cfg, ms(240), ms(218), 61*time.Second, false)
	if got := b.Value(); got != ms(38) {
		t.Fatalf("rises by a tenth of 200 ms in a minute: %v", got)
	}
	b.Observe(cfg, ms(240), ms(238), 121*time.Second, true)
	if got := b.Value(); got != ms(38) {
		t.Fatalf("bloated: a minute is not enough to rise: %v", got)
	}
	b.Observe(cfg, ms(240), ms(238), 661*time.Second, true)
	if got := b.Value(); got != ms(58) {
		t.Fatalf("bloated: a tenth in ten minutes: %v", got)
	}
}

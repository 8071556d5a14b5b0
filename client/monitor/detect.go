// Package monitor is the daemon's line monitor: cheap latency samples to
// the gateway, a baseline, and the detection that turns them into
// findings (the line is saturated by something else; the load is this
// machine's own; the line is lossy), then into suggestions.
//
// Detect (this file) and the Advisor (advise.go) are pure: samples and
// monotonic readings in, a finding or a step out; they never look at a
// clock. The Monitor (monitor.go) paces the samples and keeps a bounded
// history, but does no I/O of its own: the probe and the interface
// counters are functions the daemon injects (client/line.go), so this
// package imports no probe code: only netdiag/report, for the
// suggestion types.
//
// The approach follows cake-autorate's: a sample is delayed when it is
// well above the baseline, and the line is bufferbloated when enough of
// the recent samples are delayed. The baseline is a rolling minimum that
// falls at once and rises slowly, so a queue that lasts minutes is not
// taken for the new normal, while a route that really got longer is,
// within minutes.
package monitor

import (
	"fmt"
	"slices"
	"time"
)

// Sample is one probe of the path, as the sampler took it.
type Sample struct {
	// At is a monotonic reading (time since the monitor started), never a
	// wall-clock time.
	At time.Duration
	// RTT is the round trip; zero when Lost.
	RTT  time.Duration
	Lost bool
	// OwnMbps is this machine's own traffic on the uplink interface since
	// the previous sample (received plus sent, from its byte counters),
	// in Mbit/s; negative when unknown.
	OwnMbps float64
}

// Config tunes detection. DefaultConfig's values are the documented
// defaults; each is explained there.
type Config struct {
	// A sample is delayed when its RTT exceeds the baseline by more than
	// DelayedOver and by more than DelayedFactor times the baseline.
	DelayedOver   time.Duration
	DelayedFactor float64
	// Window is the span of recent samples a finding is drawn from;
	// DelayedShare of them delayed makes the line bufferbloated, and a
	// window needs MinSamples to say anything.
	Window       time.Duration
	DelayedShare float64
	MinSamples   int
	// Sustain is how long the line must look saturated before Detect
	// reports it: one burst (a page load, a photo sync) never does.
	Sustain time.Duration
	// Gap: samples further apart than this (a laptop that slept, a
	// stalled sampler) start a new run; nothing is sustained across it.
	Gap time.Duration
	// OwnMbps: this machine moving more than this, on average over the
	// window, makes a saturation its own (a big download), not
	// something else's on the network.
	OwnMbps float64
	// LossShare of the window's samples lost, with the rest not
	// delayed, is a lossy line, not a saturated one.
	LossShare float64
	// RiseEvery is how fast the baseline rises towards a higher
	// minimum: by a tenth of the difference each RiseEvery, ten times
	// slower while the line is bloated.
	RiseEvery time.Duration
}

// DefaultConfig: a sample is delayed at baseline + 30 ms and 1.5 ×
// baseline (cake-autorate's delay threshold is 30 ms; the factor keeps a
// 150 ms satellite path from counting jitter), half of a 60 s window
// delayed is bloat, and 45 s of it is a saturation worth a check. The
// window is long enough that one burst of a few seconds is a few
// samples out of twenty or thirty.
func DefaultConfig() Config {
	return Config{
		DelayedOver:   30 * time.Millisecond,
		DelayedFactor: 0.5,
		Window:        time.Minute,
		DelayedShare:  0.5,
		MinSamples:    10,
		Sustain:       45 * time.Second,
		Gap:           15 * time.Second,
		OwnMbps:       2,
		LossShare:     0.2,
		RiseEvery:     time.Minute,
	}
}

// Kind is what a window shows.
type Kind string

const (
	// KindUnknown: too few samples to say.
	KindUnknown Kind = "unknown"
	// KindOK: the line is as it usually is.
	KindOK Kind = "ok"
	// KindBloated: recent samples are delayed, but not yet for Sustain.
	KindBloated Kind = "bloated"
	// KindSaturated: delayed for Sustain, while this machine's own
	// traffic is low: something else on the network is using the line.
	KindSaturated Kind = "saturated"
	// KindOwnLoad: delayed for Sustain, and this machine moves enough
	// to explain it.
	KindOwnLoad Kind = "own_load"
	// KindLossy: many samples lost, the rest on time.
	KindLossy Kind = "lossy"
)

// Finding is what Detect read from the samples, with its figures.
type Finding struct {
	Kind Kind
	// Baseline is the path's usual round trip; Current the median of the
	// window's answered samples.
	Baseline, Current time.Duration
	// Delayed and Lost are shares of the window's samples.
	Delayed, Lost float64
	// Since is when the current run of delayed windows began (a
	// monotonic reading); For how long it has lasted.
	Since, For time.Duration
	// OwnMbps is this machine's mean traffic over the window, negative
	// when unknown.
	OwnMbps float64
	// Samples is how many the window held; OnTime how many of the
	// latest answered ones came on time, in a row.
	Samples, OnTime int
}

// Text is the finding for a person, with the figures.
func (f Finding) Text() string {
	switch f.Kind {
	case KindSaturated:
		s := fmt.Sprintf("latency rose from %s to %s for the last %s", msText(f.Baseline), msText(f.Current), minutes(f.For))
		if f.OwnMbps >= 0 {
			s += fmt.Sprintf(", while this computer used only %.1f Mbit/s", f.OwnMbps)
		}
		return s
	case KindOwnLoad:
		return fmt.Sprintf("latency rose from %s to %s for the last %s while this computer moved %.1f Mbit/s: the load is its own", msText(f.Baseline), msText(f.Current), minutes(f.For), f.OwnMbps)
	case KindBloated:
		return fmt.Sprintf("latency is up from %s to %s", msText(f.Baseline), msText(f.Current))
	case KindLossy:
		return fmt.Sprintf("%.0f%% of probes were lost, the rest on time (%s)", f.Lost*100, msText(f.Current))
	case KindOK:
		return fmt.Sprintf("latency is %s, as usual", msText(f.Current))
	}
	return "not enough samples yet"
}

// ms writes a round trip as a person reads it: whole milliseconds, with
// a decimal under 10 ms (a LAN's, or a fiber line's).
func msText(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func minutes(d time.Duration) string {
	if d < 90*time.Second {
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	}
	return fmt.Sprintf("%d minutes", int(d.Round(time.Minute)/time.Minute))
}

// Baseline follows the path's usual round trip: it falls to a lower
// sample at once and rises towards the recent window's minimum by a
// tenth each RiseEvery (2 ms a minute of drift lags it by 20 ms, under
// the delay threshold), and ten times slower while the line is bloated,
// so a standing queue takes over an hour to be taken for normal.
type Baseline struct {
	value time.Duration
	at    time.Duration // when it last moved
}

// Value is the baseline, zero before the first answered sample.
func (b *Baseline) Value() time.Duration { return b.value }

// Observe feeds one answered sample at monotonic time at; windowMin is
// the lowest RTT of the recent window, bloated whether the line is.
func (b *Baseline) Observe(cfg Config, rtt, windowMin time.Duration, at time.Duration, bloated bool) {
	every := cfg.RiseEvery
	if bloated {
		every *= 10
	}
	switch {
	case b.value == 0 || rtt < b.value:
		b.value, b.at = rtt, at
	case windowMin <= b.value:
		b.at = at // at its floor: nothing to rise to
	case at-b.at >= every:
		steps := float64(at-b.at) / float64(every)
		rise := time.Duration(float64(windowMin-b.value) * min(1, 0.1*steps))
		b.value, b.at = b.value+rise, at
	}
}

// Detect reads samples (oldest first, as taken) and says what the
// latest window shows. It is pure: the same samples give the same
// finding. A window never spans a gap (cfg.Gap), so nothing is sustained
// across a sleep; the baseline carries over, since the path is the same
// after a sleep (a network change starts a new series).
func Detect(cfg Config, samples []Sample) Finding {
	f := Finding{Kind: KindUnknown, OwnMbps: -1}
	if len(samples) == 0 {
		return f
	}
	var base Baseline
	var bloatedSince time.Duration = -1
	var baseBefore time.Duration // the baseline when the bloat began
	var last window
	start := 0 // the latest run's first sample
	for i := range samples {
		if i > 0 && (samples[i].At-samples[i-1].At > cfg.Gap || samples[i].At < samples[i-1].At) {
			start, bloatedSince = i, -1
			base.at = samples[i].At // a sleep is not time the baseline rises in
		}
		before := base.Value()
		w := windowAt(cfg, samples[start:], i-start, &base, bloatedSince >= 0)
		last = w
		if w.n < cfg.MinSamples {
			continue
		}
		if w.delayedShare() >= cfg.DelayedShare {
			if bloatedSince < 0 {
				bloatedSince, baseBefore = w.runStart, before
			}
		} else {
			bloatedSince = -1
		}
	}
	f.Baseline, f.Current, f.Samples, f.OnTime = base.Value(), last.median, last.n, last.onTime
	f.Delayed, f.Lost, f.OwnMbps = last.delayedShare(), last.lostShare(), last.ownMbps()
	if last.n < cfg.MinSamples {
		return f
	}
	now := samples[len(samples)-1].At
	switch {
	case bloatedSince >= 0:
		f.Since, f.For = bloatedSince, now-bloatedSince
		if baseBefore > 0 {
			f.Baseline = baseBefore // "rose from" what it was
		}
		switch {
		case f.For < cfg.Sustain:
			f.Kind = KindBloated
		case f.OwnMbps >= cfg.OwnMbps:
			f.Kind = KindOwnLoad
		default:
			f.Kind = KindSaturated
		}
	case f.Lost >= cfg.LossShare:
		f.Kind = KindLossy
	default:
		f.Kind = KindOK
	}
	return f
}

// window is the samples within cfg.Window up to one sample.
type window struct {
	n, delayed, lost int
	median           time.Duration
	// runStart is the first delayed sample after the window's last quiet
	// stretch (quietRun answered samples on time): when the load that
	// delays the window began, not an older burst's sample.
	runStart time.Duration
	// onTime counts the latest answered samples on time, in a row.
	onTime int
	ownSum float64
	ownN   int
}

// quietRun answered samples on time in a row end a run of delay: 10 s at
// the monitor's pace.
const quietRun = 5

func (w window) delayedShare() float64 { return share(w.delayed, w.n) }
func (w window) lostShare() float64    { return share(w.lost, w.n) }
func (w window) ownMbps() float64 {
	if w.ownN == 0 {
		return -1
	}
	return w.ownSum / float64(w.ownN)
}

func share(k, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) / float64(n)
}

// windowAt computes the window ending at run[i], feeding the baseline
// with run[i] first: a sample is judged against the baseline as it stood
// when it came.
func windowAt(cfg Config, run []Sample, i int, base *Baseline, bloated bool) window {
	from := i
	for from > 0 && run[i].At-run[from-1].At < cfg.Window {
		from--
	}
	rtts := make([]time.Duration, 0, i-from+1)
	for _, s := range run[from : i+1] {
		if !s.Lost {
			rtts = append(rtts, s.RTT)
		}
	}
	if s := run[i]; !s.Lost {
		base.Observe(cfg, s.RTT, slices.Min(rtts), s.At, bloated)
	}
	w := window{n: i - from + 1, runStart: -1}
	b := base.Value()
	quiet := 0
	for _, s := range run[from : i+1] {
		switch {
		case s.Lost:
			w.lost++
		case cfg.delayed(s.RTT, b):
			w.delayed++
			if w.runStart < 0 || quiet >= quietRun {
				w.runStart = s.At
			}
			quiet, w.onTime = 0, 0
		default:
			quiet++
			w.onTime++
		}
		if s.OwnMbps >= 0 {
			w.ownSum += s.OwnMbps
			w.ownN++
		}
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		w.median = rtts[len(rtts)/2]
	}
	return w
}

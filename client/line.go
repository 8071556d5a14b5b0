package client

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/monitor"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
)

// The line monitor, as the daemon runs it: a probe to the gateway every
// 2 s by the one method that answers (ICMP, else STAMP, else TCP), this
// machine's own traffic from its uplink's counters, and the advisor's
// suggestions on the event stream.

const (
	// checkProbes and checkEvery shape the active check that confirms a
	// saturation before a hotspot is suggested: a second of probes.
	checkProbes = 5
	checkEvery  = 200 * time.Millisecond
	// rechooseAfter lost probes in a row, the method is chosen again (a
	// kill switch came up, a firewall changed).
	rechooseAfter = 5
	// maxLineHistory bounds what GET /v1/line returns.
	maxLineHistory = monitor.DefaultHistory
)

// probeBytes is one probe and its answer on the wire, for the traffic
// figure: IPv4 headers and the method's payload (ICMP echo: 8 + 24,
// pro-bing's default; STAMP: UDP 8 + 44; TCP: a handshake and its close,
// about 5 segments).
func probeBytes(method string) float64 {
	switch method {
	case report.MethodICMP:
		return 2 * (20 + 8 + 24)
	case report.MethodSTAMP:
		return 2 * (20 + 8 + 44)
	case report.MethodTCP:
		return 5 * (20 + 32)
	}
	return 0
}

// newMonitor builds the line monitor; Run runs it.
func (d *Daemon) newMonitor() *monitor.Monitor {
	// The host's own sockets, unmarked: with the TUN engine in full mode
	// the probes take the tunnel like any traffic (and the kill switch
	// never sees them leave outside it); otherwise they go straight to
	// the gateway.
	p := &netdiag.Prober{}
	m := monitor.New(monitor.Options{
		Probe:     func(ctx context.Context) (time.Duration, error) { return d.probeLine(ctx, p) },
		Counters:  func() (uint64, bool) { return interfaceBytes(d.uplink()) },
		OnFinding: d.onFinding,
		Logger:    d.logger,
	})
	return m
}

func (d *Daemon) uplink() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.network.Interface
}

// lineTargetLocked is the gateway as the monitor probes it: its public
// address (the WireGuard endpoint's, which no tunnel route covers), its
// STAMP reflector and its API port.
func (d *Daemon) lineTargetLocked() (netdiag.Target, bool) {
	rec := d.enr
	if rec == nil || rec.Revoked != "" {
		return netdiag.Target{}, false
	}
	t := netdiag.Target{Name: "gateway", STAMPPort: rec.Diagnostics.STAMPPort}
	if ep, ok := d.endpoints[rec.Enrollment.Endpoint]; ok {
		t.Addr = ep.Addr()
	} else if ap, err := netip.ParseAddrPort(rec.Enrollment.Endpoint); err == nil {
		t.Addr = ap.Addr()
	}
	if u, err := url.Parse(rec.Gateway); err == nil {
		if port, err := strconv.Atoi(u.Port()); err == nil {
			t.TCPPort = uint16(port)
		} else if u.Scheme == "https" {
			t.TCPPort = 443
		}
		if !t.Addr.IsValid() {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				t.Addr = a
			}
		}
	}
	return t, t.Addr.IsValid()
}

// probeLine is one monitor probe.
func (d *Daemon) probeLine(ctx context.Context, p *netdiag.Prober) (time.Duration, error) {
	d.mu.Lock()
	t, ok := d.lineTargetLocked()
	method := d.lineMethod
	busy := d.diagnosing > 0
	d.mu.Unlock()
	if !ok || busy {
		// Not enrolled; or the daemon's own measurement loads the line,
		// and its samples would describe that test, not the line.
		return 0, monitor.ErrSkip
	}
	if method == "" {
		s, err := p.Probe(ctx, t)
		if err != nil {
			return 0, err
		}
		d.mu.Lock()
		d.lineMethod, d.lineTarget, d.lineLost = s.Method, t, 0
		d.mu.Unlock()
		return s.RTT, nil
	}
	rtt, err := p.ProbeWith(ctx, t, method)
	d.mu.Lock()
	if err != nil {
		if d.lineLost++; d.lineLost >= rechooseAfter {
			d.lineMethod = ""
		}
	} else {
		d.lineLost = 0
	}
	d.mu.Unlock()
	return rtt, err
}

// onFinding takes each finding of the monitor to the advisor.
func (d *Daemon) onFinding(f monitor.Finding) {
	d.mu.Lock()
	step := d.adv.Observe(f, d.mono())
	d.mu.Unlock()
	d.applyStep(f, step)
}

// applyStep publishes what the advisor decided, or runs its check.
func (d *Daemon) applyStep(f monitor.Finding, st monitor.Step) {
	now := d.now()
	switch {
	case st.Check:
		d.bg.Go(func() { d.confirmSaturation(f) })
	case st.Suggest != nil:
		d.logger.Info("line monitor suggests", "id", st.Suggest.ID, "finding", f.Text())
		d.bus.publish(localapi.Event{Type: localapi.EventSuggestion, Time: now, Suggestion: st.Suggest})
	case st.Clear != "":
		d.logger.Info("line monitor withdraws", "id", st.Clear, "why", st.Why)
		d.bus.publish(localapi.Event{Type: localapi.EventSuggestionCleared, Time: now,
			Suggestion: &report.Suggestion{ID: st.Clear, Summary: st.Why, Because: []report.VerdictID{}}})
	}
}

// confirmSaturation is the active check: a second of probes to the
// gateway by the monitor's method; their median (0 if all lost) goes to
// the advisor.
func (d *Daemon) confirmSaturation(f monitor.Finding) {
	d.mu.Lock()
	t, method := d.lineTarget, d.lineMethod
	d.mu.Unlock()
	p := &netdiag.Prober{}
	var rtts []time.Duration
	for i := range checkProbes {
		if i > 0 {
			time.Sleep(checkEvery)
		}
		if method == "" {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), netdiag.ProbeWait)
		rtt, err := p.ProbeWith(ctx, t, method)
		cancel()
		if err == nil {
			rtts = append(rtts, rtt)
		}
	}
	var med time.Duration
	if len(rtts) > 0 {
		slices.Sort(rtts)
		med = rtts[len(rtts)/2]
	}
	d.mu.Lock()
	st := d.adv.Confirm(f, med, d.mono())
	d.mu.Unlock()
	if st.Suggest == nil && st.Clear == "" {
		d.logger.Info("line monitor: the active check did not confirm a saturation", "check", med, "finding", f.Text())
	}
	if st.Suggest != nil && st.Suggest.ID == report.SuggestionUseHotspot {
		d.compareUplinks(st.Suggest)
	}
	d.applyStep(f, st)
}

// compareUplinks, when the computer has a second uplink, measures both
// and puts the figures and the better one into s.
func (d *Daemon) compareUplinks(s *report.Suggestion) {
	if ups, err := d.uplinks(); err != nil || len(ups) < 2 {
		return
	}
	d.mu.Lock()
	ctx := d.bgCtx
	d.mu.Unlock()
	if ctx == nil {
		return
	}
	// The comparison loads every uplink: not alongside another
	// measurement of the daemon's.
	d.ops.Lock()
	rep, err := d.diagnoseUplinks(ctx, true)
	d.ops.Unlock()
	if err != nil || rep.Uplinks == nil {
		d.logger.Warn("line monitor: comparing the uplinks", "err", err)
		return
	}
	withUplinks(s, rep.Uplinks)
}

// withUplinks puts an uplink comparison into a hotspot suggestion.
func withUplinks(s *report.Suggestion, u *report.UplinksReport) {
	if s.Evidence != nil {
		s.Evidence.Uplinks = u
	}
	if u.Switch {
		s.Summary = strings.TrimSuffix(s.Summary, monitor.HotspotAdvice) + " " + u.Recommendation
		return
	}
	s.Summary += " Measured just now: " + u.Recommendation
}

// lineStatus is GET /v1/line.
func (d *Daemon) lineStatus(since time.Duration) localapi.Line {
	d.mu.Lock()
	m, method, target := d.mon, d.lineMethod, d.lineTarget
	active := d.adv.Active()
	now, wall := d.mono(), d.now()
	snoozed := map[report.SuggestionID]time.Time{}
	for _, id := range []report.SuggestionID{report.SuggestionUseHotspot, report.SuggestionPauseOwnTransfers} {
		if u := d.adv.SnoozedUntil(id, now); u > 0 {
			snoozed[id] = wall.Add(u - now)
		}
	}
	d.mu.Unlock()
	out := localapi.Line{Method: method, Active: active, Samples: []localapi.LineSample{}}
	if len(snoozed) > 0 {
		out.Snoozed = snoozed
	}
	if target.Addr.IsValid() {
		out.Target = target.Addr.String()
	}
	if m == nil {
		out.Finding = localapi.LineFinding{Kind: string(monitor.KindUnknown), Text: "the line monitor is not running"}
		return out
	}
	f := m.Finding()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out.Finding = localapi.LineFinding{Kind: string(f.Kind), Text: f.Text(), BaselineMS: ms(f.Baseline), CurrentMS: ms(f.Current),
		DelayedPct: f.Delayed * 100, LostPct: f.Lost * 100, ForS: f.For.Seconds(), Samples: f.Samples}
	if f.OwnMbps >= 0 {
		own := f.OwnMbps
		out.Finding.OwnMbps = &own
	}
	// The monitor's clock started with it, after the daemon's: sample
	// times map to wall time through a reading of it now, which is also
	// how long it has run.
	mnow := m.Now()
	out.Probes = m.Probes()
	if mnow > 0 {
		out.TrafficBps = float64(out.Probes) * probeBytes(method) * 8 / mnow.Seconds()
	}
	for _, s := range m.Samples(mnow - since) {
		ls := localapi.LineSample{Time: wall.Add(s.At - mnow).UTC()}
		if !s.Lost {
			v := ms(s.RTT)
			ls.RTTMS = &v
		}
		if s.OwnMbps >= 0 {
			v := s.OwnMbps
			ls.OwnMbps = &v
		}
		out.Samples = append(out.Samples, ls)
	}
	return out
}

func (d *Daemon) handleLine(w http.ResponseWriter, r *http.Request) {
	since := time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 || dur > maxLineHistory {
			localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest,
				Message: "since: want a duration up to 24h, e.g. since=1h"})
			return
		}
		since = dur
	}
	localapi.WriteJSON(w, d.lineStatus(since))
}

func (d *Daemon) handleSnooze(w http.ResponseWriter, r *http.Request) {
	var req localapi.SnoozeRequest
	if !decode(w, r, &req) {
		return
	}
	dur, err := time.ParseDuration(req.For)
	switch {
	case req.ID != report.SuggestionUseHotspot && req.ID != report.SuggestionPauseOwnTransfers:
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest,
			Message: "id: the line monitor's suggestions are use_hotspot and pause_own_transfers"})
		return
	case err != nil || dur <= 0 || dur > 7*24*time.Hour:
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest,
			Message: "for: want a duration up to a week, e.g. 1h"})
		return
	}
	d.mu.Lock()
	now := d.mono()
	st := d.adv.Snooze(req.ID, now, dur)
	d.mu.Unlock()
	d.applyStep(monitor.Finding{}, st)
	localapi.WriteJSON(w, localapi.SnoozeAnswer{ID: req.ID, Until: d.now().Add(dur).UTC()})
}

package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/policy"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/gwapi/wgconf"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/tunnel"
)

// Operations. Each runs with d.ops held, so they never overlap; they
// take d.mu only to read or record state, never while waiting.

// gatewayClient is the gateway's API as the enrollment reaches it.
// Its connections carry the TUN engine's mark, where tetherd may set it:
// they go straight to the gateway, past the tunnel's routes and through
// the kill switch, so a device whose tunnel is dead (revoked, or held
// down) still hears from its gateway. Only tetherd's calls to the
// gateway's API, which it pins, take this way.
func (d *Daemon) gatewayClient(url, pin string) (*gwapi.Client, error) {
	dial := controlDialer()
	if dial == nil {
		return gwapi.New(gwapi.Config{BaseURL: url, Pin: pin})
	}
	tc, err := gwapi.PinnedTLS(pin)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DialContext: dial.DialContext, TLSClientConfig: tc, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: gatewayCheckTimeout, IdleConnTimeout: 30 * time.Second, MaxIdleConns: 2}
	hc := &http.Client{Timeout: gwapi.DefaultTimeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return gwapi.New(gwapi.Config{BaseURL: url, HTTP: hc})
}

// enroll enrolls this device: a fresh key, the gateway's answer, and the
// key, credential and enrollment saved before anything else is done.
func (d *Daemon) enroll(ctx context.Context, req localapi.EnrollRequest) error {
	if req.URL == "" {
		req.URL, req.Pin = d.cfg.Gateway, d.cfg.GatewayPin
	}
	if req.URL == "" {
		return &localapi.Error{Status: 400, Code: localapi.CodeBadRequest, Message: "enroll needs the gateway's URL (`tether enroll URL --token T`)"}
	}
	if req.Label == "" {
		req.Label, _ = os.Hostname()
	}
	gc, err := d.gatewayClient(req.URL, req.Pin)
	if err != nil {
		return &localapi.Error{Status: 400, Code: localapi.CodeBadRequest, Message: err.Error()}
	}
	key, err := tunnel.GeneratePrivateKey()
	if err != nil {
		return err
	}
	en, err := gc.Enroll(ctx, gwapi.EnrollRequest{Token: req.Token, PublicKey: key.Public().String(), Label: req.Label})
	if err != nil {
		return &localapi.Error{Status: 502, Code: localapi.CodeEnrollFailed, Message: err.Error()}
	}
	if en.DeviceCredential == "" {
		return &localapi.Error{Status: 502, Code: localapi.CodeEnrollFailed, Message: "the gateway gave no device credential: it is older than this tetherd; upgrade it"}
	}
	rec := &enrollRecord{Gateway: gc.BaseURL(), Pin: req.Pin, Enrollment: en, EnrolledAt: d.now()}
	rec.Policy = gwapi.DefaultPolicy()
	if en.Policy != nil {
		rec.Policy = *en.Policy
	}
	if en.Diagnostics != nil {
		rec.Diagnostics = *en.Diagnostics
	}
	cred := en.DeviceCredential
	rec.Enrollment.DeviceCredential = "" // a file of its own, 0600
	d.takeDown(ctx, "enrolling anew")
	d.mu.Lock()
	st := d.st
	d.mu.Unlock()
	if err := tunnel.WriteKeyFile(st.path(fileKey), key); err != nil {
		return err
	}
	if err := st.write(fileCredential, []byte(cred+"\n")); err != nil {
		return err
	}
	if err := st.save(fileEnrollment, rec); err != nil {
		return err
	}
	var name string
	ictx, cancel := context.WithTimeout(ctx, gatewayCheckTimeout)
	if info, ierr := gc.Info(ictx); ierr == nil {
		name = info.Name
	}
	cancel()
	d.mu.Lock()
	d.enr, d.key, d.cred = rec, key, cred
	d.gw = localapi.GatewayStatus{URL: rec.Gateway, Name: name, Reachable: true, LastCheck: d.now()}
	d.applied, d.deviceChecked, d.engTried, d.engErr = nil, d.mono(), 0, ""
	d.mu.Unlock()
	d.logger.Info("enrolled", "gateway", rec.Gateway, "peer", en.PeerID, "address", en.Address)
	return nil
}

// checkDevice asks the gateway about this device: the policy, or word
// that it was revoked.
func (d *Daemon) checkDevice(ctx context.Context) {
	d.mu.Lock()
	rec, cred := d.enr, d.cred
	d.mu.Unlock()
	if rec == nil {
		return
	}
	gc, err := d.gatewayClient(rec.Gateway, rec.Pin)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, gatewayCheckTimeout)
	defer cancel()
	start := time.Now()
	dev, err := gc.Device(ctx, cred)
	rtt := time.Since(start)
	var name string
	if err == nil {
		if info, ierr := gc.Info(ctx); ierr == nil {
			name = info.Name
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.enr != rec {
		return // enrolled anew meanwhile
	}
	d.gw.LastCheck = d.now()
	switch {
	case errors.Is(err, gwapi.ErrRevoked):
		msg := "the gateway refuses this device's credential"
		var ge *gwapi.Error
		if errors.As(err, &ge) && ge.Message != "" {
			msg = ge.Message
		}
		d.enr.Revoked = msg
		d.gw.Reachable, d.gw.Error = true, ""
		if serr := d.st.save(fileEnrollment, d.enr); serr != nil {
			d.logger.Error("saving the revocation", "err", serr)
		}
		d.logger.Warn("this device was revoked", "gateway", rec.Gateway, "message", msg)
	case err != nil:
		d.gw.Reachable, d.gw.RTT, d.gw.Error = false, 0, err.Error()
	default:
		d.gw.Reachable, d.gw.RTT, d.gw.Error, d.gw.Name = true, localapi.Duration(rtt), "", name
		d.enr.Policy, d.enr.Diagnostics = dev.Policy, dev.Diagnostics
		if serr := d.st.save(fileEnrollment, d.enr); serr != nil {
			d.logger.Error("saving the policy", "err", serr)
		}
	}
}

// connect decides the mode (diagnosing the network first when nothing
// is known of it), builds the plan and brings the engine up. mode
// overrides the settings' for this call ("" keeps them).
func (d *Daemon) connect(ctx context.Context, mode string) (localapi.Decision, error) {
	d.mu.Lock()
	if d.eng != nil && d.applied != nil {
		// Up already (an employee's up ran while the loop's was queued):
		// one engine at a time.
		dec := toLocal(d.applied.Decision)
		d.mu.Unlock()
		return dec, nil
	}
	rec, key := d.enr, d.key
	needReport := d.reportNetwork != d.network.ID() || len(d.reports) == 0
	failClosed := d.failClosedLocked()
	d.mu.Unlock()
	if rec == nil || rec.Revoked != "" {
		return localapi.Decision{}, &localapi.Error{Status: 409, Code: localapi.CodeNotEnrolled, Message: "this device is not enrolled: `tether enroll URL --token T`"}
	}
	// Without the kill switch, measure this network before deciding,
	// outside the tunnel. With it, nothing may leave outside the tunnel,
	// so the mode is decided from what is known.
	if needReport && !failClosed {
		if _, err := d.diagnose(ctx, false, nil); err != nil {
			d.logger.Warn("diagnosis before connecting failed", "err", err)
		}
	}
	d.mu.Lock()
	settings := d.settings
	if mode != "" {
		settings.Mode = mode
	}
	var rep *report.Report
	if len(d.reports) > 0 && d.reportNetwork == d.network.ID() {
		rep = &d.reports[0]
	}
	n := policy.Network{ID: d.network.ID(), Previous: d.applied, Now: d.mono()}
	dec := policy.Decide(rec.Policy, rep, policy.Settings{Mode: settings.Mode}, n)
	engineSetting := settings.Engine
	failClosed = d.failClosedLocked()
	d.mu.Unlock()

	kind, err := chooseEngine(engineSetting)
	if err != nil {
		d.setEngineError(err)
		return toLocal(dec), err
	}
	cfg, plan, err := d.plan(ctx, key, rec, dec.Mode)
	if err != nil {
		d.setEngineError(err)
		return toLocal(dec), err
	}
	eng, err := newEngine(engineSpec{Kind: kind, Config: cfg, Plan: plan, Probe: netip.MustParseAddr(rec.Enrollment.GatewayAddress),
		FailClosed: failClosed, StateDir: d.cfg.StateDir, Logger: d.logger})
	if err == nil {
		err = eng.Up(ctx)
	}
	if err != nil {
		if failClosed && kind == EngineTUN && eng != nil {
			// A failed Up leaves its kill switch in place.
			d.mu.Lock()
			d.held = true
			d.mu.Unlock()
		}
		d.setEngineError(err)
		return toLocal(dec), fmt.Errorf("bringing the %s tunnel up: %w", kind, err)
	}
	now := d.mono()
	d.mu.Lock()
	d.held = false // the engine owns the rules now
	d.eng, d.engMode, d.engSince, d.engErr = eng, dec.Mode, now, ""
	d.lastAnswer, d.lastRx, d.answers = 0, 0, answerClock{}
	d.applied = &policy.Applied{Decision: dec, Network: n.ID, At: now}
	d.netChanged = false
	local := d.noteDecisionLocked(dec, n.ID)
	d.mu.Unlock()
	d.publishDecision(local, dec)
	d.logger.Info("tunnel up", "mode", dec.Mode, "engine", kind, "reason", dec.Reasons[0].ID)
	d.wake()
	return local, nil
}

// noteDecisionLocked keeps a decision applied in the history.
func (d *Daemon) noteDecisionLocked(dec policy.Decision, netID string) localapi.Decision {
	local := toLocal(dec)
	d.decisions = append([]decisionRecord{{At: d.now(), Network: netID, Decision: local}}, d.decisions...)
	if len(d.decisions) > maxDecisions {
		d.decisions = d.decisions[:maxDecisions]
	}
	if err := d.st.save(fileDecisions, d.decisions); err != nil {
		d.logger.Error("saving the decision", "err", err)
	}
	return local
}

// publishDecision tells the watchers of a decision applied, and of the
// suggestions that come with it.
func (d *Daemon) publishDecision(local localapi.Decision, dec policy.Decision) {
	d.bus.publish(localapi.Event{Type: localapi.EventDecision, Time: d.now(), Decision: &local})
	for i := range dec.Suggestions {
		d.bus.publish(localapi.Event{Type: localapi.EventSuggestion, Time: d.now(), Suggestion: &dec.Suggestions[i]})
	}
}

func (d *Daemon) setEngineError(err error) {
	d.mu.Lock()
	d.engErr = err.Error()
	d.mu.Unlock()
	d.logger.Warn("the tunnel could not come up", "err", err)
	d.wake()
}

// plan turns the enrollment and a mode into the engine's config and
// routes. The company's always-tunnel prefixes go through the tunnel in
// every mode.
func (d *Daemon) plan(ctx context.Context, key tunnel.PrivateKey, rec *enrollRecord, mode string) (*tunnel.Config, *tunnel.Plan, error) {
	ep, err := tunnel.ResolveEndpoint(ctx, rec.Enrollment.Endpoint)
	d.mu.Lock()
	if err == nil {
		if d.endpoints == nil {
			d.endpoints = map[string]netip.AddrPort{}
		}
		d.endpoints[rec.Enrollment.Endpoint] = ep
	} else if last, ok := d.endpoints[rec.Enrollment.Endpoint]; ok {
		// Behind the kill switch DNS is out of reach: the address
		// last resolved will do.
		d.logger.Warn("resolving the gateway's endpoint failed; using the address last resolved", "endpoint", rec.Enrollment.Endpoint, "address", last, "err", err)
		ep, err = last, nil
	}
	d.mu.Unlock()
	if err != nil {
		return nil, nil, fmt.Errorf("the gateway's WireGuard endpoint %s: %w", rec.Enrollment.Endpoint, err)
	}
	en := rec.Enrollment
	en.AllowedModes = rec.Policy.AllowedModes
	for _, p := range rec.Policy.AlwaysTunnel {
		en.CompanyPrefixes = append(en.CompanyPrefixes, p.String())
	}
	return wgconf.FromEnrollment(key, en, tunnel.Mode(mode), ep.Addr())
}

// takeDown stops the engine, if any. Where the kill switch applies (and
// tetherd is not stopping) the engine's rules stay: the state is then
// blocked, and blocked means nothing leaves.
func (d *Daemon) takeDown(ctx context.Context, why string) {
	d.mu.Lock()
	eng := d.eng
	hold := d.holdWantedLocked()
	d.eng, d.engMode = nil, ""
	d.mu.Unlock()
	if eng == nil {
		return
	}
	var err error
	if hold {
		err = eng.Hold(ctx)
	} else {
		err = eng.Down(ctx)
	}
	if err != nil {
		d.logger.Warn("taking the tunnel down", "err", err)
	}
	if hold && eng.Kind() == EngineTUN {
		d.mu.Lock()
		d.held = true
		d.mu.Unlock()
	}
	d.logger.Info("tunnel down", "why", why, "kill_switch_holds", hold)
	d.wake()
}

// holdWantedLocked: the kill switch applies, to an enrolled device, and
// tetherd is not stopping.
func (d *Daemon) holdWantedLocked() bool {
	return !d.stopping && d.enr != nil && d.enr.Revoked == "" && d.failClosedLocked()
}

// block puts the kill switch in place with no tunnel up, as the TUN
// engine would install it for the mode last applied.
func (d *Daemon) block(ctx context.Context) {
	d.mu.Lock()
	rec, key, mode := d.enr, d.key, gwapi.ModeFull
	if d.applied != nil {
		mode = d.applied.Decision.Mode
	}
	ok := d.holdWantedLocked() && d.eng == nil && !d.held
	d.mu.Unlock()
	if !ok {
		return
	}
	cfg, plan, err := d.plan(ctx, key, rec, mode)
	var eng engine
	if err == nil {
		eng, err = newEngine(engineSpec{Kind: EngineTUN, Config: cfg, Plan: plan, FailClosed: true, StateDir: d.cfg.StateDir, Logger: d.logger})
	}
	if err == nil {
		err = eng.Block(ctx)
	}
	if err != nil {
		d.logger.Error("the kill switch could not be put in place", "err", err)
		return
	}
	d.mu.Lock()
	d.held = true
	d.mu.Unlock()
	d.wake()
}

// release removes a held kill switch.
func (d *Daemon) release(ctx context.Context, why string) {
	d.mu.Lock()
	held := d.held && d.eng == nil
	d.mu.Unlock()
	if !held {
		return
	}
	if err := tunnel.RemoveKillSwitch(ctx); err != nil {
		d.logger.Error("removing the kill switch", "err", err)
		return
	}
	d.mu.Lock()
	d.held = false
	d.mu.Unlock()
	d.logger.Info("kill switch removed", "why", why)
	d.wake()
}

// adoptLeftover finds a kill switch a crashed tetherd left: kept where
// it still applies (the next connect replaces it without a gap), removed
// where it does not.
func (d *Daemon) adoptLeftover(ctx context.Context) {
	if ok, _ := tunAvailable(); !ok {
		return
	}
	left, err := tunnel.LeftoverKillSwitch(ctx)
	if err != nil {
		d.logger.Debug("looking for a leftover kill switch", "err", err)
		return
	}
	if !left {
		return
	}
	d.mu.Lock()
	keep := d.holdWantedLocked()
	d.held = true
	d.mu.Unlock()
	if keep {
		d.logger.Info("kept the kill switch a previous run left: it still applies")
		return
	}
	d.release(ctx, "a previous run left it and it no longer applies")
}

// rebind follows a network change: down (unless the kill switch must
// hold, when the engine stays and rebinds by itself), a quick diagnosis
// of the new network (its security verdicts decide at once), up again
// in the mode decided, then, where the line's figures could change that
// mode, one full diagnosis of the line and the decision it calls for. That full diagnosis is the only one the daemon runs on its own.
func (d *Daemon) rebind(ctx context.Context) {
	d.mu.Lock()
	failClosed := d.failClosedLocked()
	d.netChanged = false
	d.mu.Unlock()
	if failClosed {
		return // wireguard-go follows the new route by itself
	}
	d.takeDown(ctx, "the network changed")
	if _, err := d.diagnose(ctx, true, nil); err != nil {
		d.logger.Warn("quick diagnosis after a network change failed", "err", err)
	}
	dec, err := d.connect(ctx, "")
	if err != nil {
		d.logger.Warn("reconnecting after a network change", "err", err)
		return
	}
	if len(dec.Reasons) == 0 || dec.Reasons[0].ID != policy.RuleLineUnmeasured {
		return // security, policy or the employee decided: figures change nothing
	}
	d.mu.Lock()
	up, netID := d.eng != nil, d.network.ID()
	d.mu.Unlock()
	if !up {
		return
	}
	// The line, not the tunnel: against the gateway's public API, whose
	// address is the WireGuard endpoint's and so never routed into the
	// tunnel (and the userspace engine routes nothing), as the
	// diagnosis before a first connect measures it.
	if _, err := d.diagnose(ctx, false, nil); err != nil {
		d.logger.Warn("measuring the new network's line", "err", err)
		return
	}
	d.redecide(ctx, netID)
}

// redecide applies the decision the latest report calls for on network
// netID, if it differs from the mode the tunnel is in: down and up again
// in the new mode.
func (d *Daemon) redecide(ctx context.Context, netID string) {
	d.mu.Lock()
	if d.eng == nil || d.enr == nil || d.network.ID() != netID || d.reportNetwork != netID || len(d.reports) == 0 {
		d.mu.Unlock()
		return
	}
	n := policy.Network{ID: netID, Previous: d.applied, Now: d.mono()}
	dec := policy.Decide(d.enr.Policy, &d.reports[0], policy.Settings{Mode: d.settings.Mode}, n)
	if dec.Mode == d.engMode {
		// The same mode, now for the measured reason: kept since the
		// tunnel came up in it, so the dwell counts from then.
		at := d.mono()
		if d.applied != nil {
			at = d.applied.At
		}
		d.applied = &policy.Applied{Decision: dec, Network: netID, At: at}
		local := d.noteDecisionLocked(dec, netID)
		d.mu.Unlock()
		d.publishDecision(local, dec)
		return
	}
	d.mu.Unlock()
	d.logger.Info("the line's figures change the mode", "to", dec.Mode, "reason", dec.Reasons[0].ID)
	d.takeDown(ctx, "the line's figures change the mode")
	if _, err := d.connect(ctx, ""); err != nil {
		d.logger.Warn("reconnecting in the new mode", "err", err)
	}
}

// diagnose runs netdiag, through eng when given (the in-tunnel
// measurement service and the company's resolver), else against the
// gateway's public API, and keeps the report.
func (d *Daemon) diagnose(ctx context.Context, quick bool, eng engine) (report.Report, error) {
	mode := report.ModeFull
	if quick {
		mode = report.ModeQuick
	}
	return d.measure(ctx, eng, false, func(_ *enrollRecord, cfg netdiag.Config) (*report.Report, error) {
		c, err := netdiag.New(cfg)
		if err != nil {
			return nil, err
		}
		return c.Run(ctx, mode), nil
	})
}

// diagnoseTunnel measures the path to the gateway beside the tunnel
// (its public API; with the TUN engine, by sockets carrying its
// firewall mark, which skip its routes and pass its kill switch) and
// through it, in one run, and keeps the tunnel leg's report with the
// comparison in it.
func (d *Daemon) diagnoseTunnel(ctx context.Context, eng engine) (report.Report, error) {
	return d.measure(ctx, eng, false, func(rec *enrollRecord, tcfg netdiag.Config) (*report.Report, error) {
		dcfg, err := d.diagConfig(rec, nil)
		if err != nil {
			return nil, err
		}
		if eng.Kind() == EngineTUN {
			dcfg.Mark = directMark()
		}
		return netdiag.CompareTunnel(ctx, dcfg, tcfg)
	})
}

// diagnoseUplinks measures every uplink but the tunnel's, each bound to
// its interface, directly against the gateway's public API, and keeps
// the default uplink's report with the comparison in it.
func (d *Daemon) diagnoseUplinks(ctx context.Context, quiet bool) (report.Report, error) {
	ups, err := d.uplinks()
	if err != nil {
		return report.Report{}, err
	}
	return d.measure(ctx, nil, quiet, func(_ *enrollRecord, cfg netdiag.Config) (*report.Report, error) {
		return netdiag.CompareUplinks(ctx, cfg, ups)
	})
}

// uplinks lists the computer's uplinks, leaving out the tunnel's own
// interface.
func (d *Daemon) uplinks() ([]netdiag.Uplink, error) {
	ups, err := netdiag.ListUplinks(nil, tunnel.DefaultInterface)
	if err != nil {
		return nil, &localapi.Error{Status: http.StatusNotImplemented, Code: localapi.CodeBadRequest, Message: err.Error()}
	}
	if len(ups) == 0 {
		return nil, &localapi.Error{Status: http.StatusConflict, Code: localapi.CodeBadRequest, Message: "no uplink has a default route"}
	}
	return ups, nil
}

// measure configures a run for the enrolled gateway (through eng when
// given), runs it with run, keeps the report and publishes it.
//
// The report's suggestions go on the event stream too, unless quiet: the
// monitor's own comparison of uplinks goes out inside its suggestion.
func (d *Daemon) measure(ctx context.Context, eng engine, quiet bool, run func(*enrollRecord, netdiag.Config) (*report.Report, error)) (report.Report, error) {
	d.mu.Lock()
	rec := d.enr
	netID := d.network.ID()
	d.diagnosing++
	d.mu.Unlock()
	d.wake()
	defer func() {
		d.mu.Lock()
		d.diagnosing--
		d.mu.Unlock()
		d.wake()
	}()
	if rec == nil {
		return report.Report{}, &localapi.Error{Status: 409, Code: localapi.CodeNotEnrolled, Message: "diagnosing needs an enrollment, which names the gateway: `tether enroll URL --token T`, or `tether diag --server URL` without the daemon"}
	}
	cfg, err := d.diagConfig(rec, eng)
	if err != nil {
		return report.Report{}, err
	}
	rep, err := run(rec, cfg)
	if err != nil {
		return report.Report{}, err
	}
	d.mu.Lock()
	d.reports = append([]report.Report{*rep}, d.reports...)
	if len(d.reports) > localapi.ReportsKept {
		d.reports = d.reports[:localapi.ReportsKept]
	}
	d.reportNetwork = netID
	if err := d.st.addReport(rep.StartedAt, rep, localapi.ReportsKept); err != nil {
		d.logger.Error("saving the report", "err", err)
	}
	d.mu.Unlock()
	now := d.now()
	d.bus.publish(localapi.Event{Type: localapi.EventReport, Time: now, Report: rep})
	for i := range rep.Suggestions {
		if quiet {
			break
		}
		d.bus.publish(localapi.Event{Type: localapi.EventSuggestion, Time: now, Suggestion: &rep.Suggestions[i]})
	}
	return *rep, nil
}

// diagConfig is a run's configuration for the enrolled gateway: through
// eng when given, else against its public API.
func (d *Daemon) diagConfig(rec *enrollRecord, eng engine) (netdiag.Config, error) {
	cfg := netdiag.Config{Logger: d.logger, Progress: d.progress}
	gw, _ := netip.ParseAddr(rec.Enrollment.GatewayAddress)
	_, port, _ := tunnel.SplitEndpoint(rec.Enrollment.Endpoint)
	cfg.DNS = netdiag.DNSConfig{BlockedCanary: rec.Diagnostics.Canary, ProbeName: rec.Diagnostics.ProbeName}
	if eng != nil {
		cfg.Server = "http://" + gw.String()
		cfg.STAMPPort = 862
		cfg.Dial, cfg.Ping = eng.Dial, eng.Ping()
		cfg.DNS.Company, cfg.DNS.ExpectFiltered = netip.AddrPortFrom(gw, 53), true
		cfg.DNS.Resolvers = []netip.AddrPort{} // the host's resolvers are not what the tunnel uses
	} else {
		tc, err := gwapi.PinnedTLS(rec.Pin)
		if err != nil {
			return netdiag.Config{}, err
		}
		cfg.Server, cfg.TLS = rec.Gateway, tc
		cfg.STAMPPort, cfg.WireGuardPort = rec.Diagnostics.STAMPPort, port
		if d.cfg.CaptiveURL != "off" {
			cfg.CaptiveURL = d.cfg.CaptiveURL
		}
		if len(d.cfg.Resolvers) > 0 {
			cfg.DNS.Resolvers = make([]netip.AddrPort, 0, len(d.cfg.Resolvers))
			for _, r := range d.cfg.Resolvers {
				cfg.DNS.Resolvers = append(cfg.DNS.Resolvers, netip.MustParseAddrPort(r)) // Validate checked
			}
		}
	}
	return cfg, nil
}

// progress turns netdiag's progress into events.
func (d *Daemon) progress(p netdiag.Progress) {
	text := p.Phase
	switch p.Phase {
	case "latency":
		text = "measuring latency, DNS and the path"
	case "download", "upload":
		text = fmt.Sprintf("%s: %.1f Mbit/s on %d streams", p.Phase, p.Mbps, p.Streams)
	case "done":
		text = fmt.Sprintf("done in %s", p.Elapsed.Round(100*time.Millisecond))
	}
	d.bus.publish(localapi.Event{Type: localapi.EventProgress, Time: d.now(), Progress: &localapi.Progress{Stage: p.Phase, Text: text}})
}

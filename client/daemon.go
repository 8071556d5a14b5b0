package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/monitor"
	"github.com/tetherwfh/tether/client/policy"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/version"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/tunnel"
)

// Timeouts and periods of the daemon.
const (
	// gatewayCheckTimeout bounds one call to the gateway's API. A
	// gateway that takes longer to answer a tiny request is unusable for
	// interactive work.
	gatewayCheckTimeout = 3 * time.Second
	// shutdownGrace bounds the local API's graceful shutdown.
	shutdownGrace = 3 * time.Second
	// socketMode lets root and the socket's group use the API, and nobody
	// else.
	socketMode = 0o660
	// tickInterval paces the reconcile loop: the tunnel answers its
	// probe every second, so the state is never more than that stale.
	tickInterval = time.Second
	// policyRefresh is how often the daemon asks the gateway for its
	// policy (and whether this device is still enrolled) while things go
	// well.
	policyRefresh = time.Hour
	// troubleCheck is how often it asks while the gateway does not
	// answer through the tunnel: a revoked device learns it within
	// seconds, not an hour.
	troubleCheck = 3 * time.Second
	// connectRetry paces attempts to bring an engine up after a failure.
	connectRetry = 5 * time.Second
)

// Options are a Daemon's collaborators. The zero value is usable.
type Options struct {
	// Logger receives the daemon's logs; nil discards them.
	Logger *slog.Logger
	// Now is the wall clock (for timestamps only); nil means time.Now.
	// Every duration the daemon acts on is read from the monotonic
	// clock.
	Now func() time.Time
	// NetWatcher follows network changes; nil means the OS's.
	NetWatcher netWatcher
}

// Daemon is tetherd. Create it with New, then call Run once.
type Daemon struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	start  time.Time // monotonic origin
	netw   netWatcher
	bus    *bus

	ready chan struct{} // closed once the local API listens
	kick  chan struct{} // wakes the reconcile loop

	// bg tracks short-lived work (the monitor's active checks) that Run
	// waits for before it returns.
	bg sync.WaitGroup

	// ops serializes what changes the tunnel (enroll, connect, rebind,
	// down, diagnose): one at a time, in order.
	ops sync.Mutex

	mu sync.Mutex // guards everything below
	st *store
	// persistent
	enr       *enrollRecord
	key       tunnel.PrivateKey
	cred      string
	settings  localapi.Settings
	reports   []report.Report // newest first
	decisions []decisionRecord
	problems  []string // corrupt state files, and the like
	// live
	since         time.Time
	network       network
	reportNetwork string // the network ID of reports[0]
	netChanged    bool
	diagnosing    int
	busy          bool // an operation is queued or running
	eng           engine
	engMode       string
	engSince      time.Duration
	engErr        string
	engTried      time.Duration
	// held: the kill switch is in place with no engine up (a TUN
	// engine's Hold or Block, or one a crash left): nothing leaves.
	held      bool
	heldTried time.Duration
	stopping  bool
	// bgCtx ends when Run begins to stop: the monitor's checks use it.
	bgCtx context.Context
	// endpoints are the gateway endpoints last resolved, by name: a
	// reconnect behind the kill switch cannot ask DNS.
	endpoints     map[string]netip.AddrPort
	answers       answerClock
	lastRx        uint64
	lastAnswer    time.Duration
	applied       *policy.Applied
	state         localapi.State
	reason        string
	deviceChecked time.Duration
	checking      bool
	gw            localapi.GatewayStatus
	// the line monitor
	mon        *monitor.Monitor
	adv        monitor.Advisor
	lineMethod string
	lineTarget netdiag.Target
	lineLost   int
}

// enrollRecord is the enrollment as the state directory keeps it; the
// private key and the device credential are files of their own.
type enrollRecord struct {
	Gateway     string            `json:"gateway"`
	Pin         string            `json:"pin,omitempty"`
	Enrollment  gwapi.Enrollment  `json:"enrollment"`
	Policy      gwapi.Policy      `json:"policy"`
	Diagnostics gwapi.Diagnostics `json:"diagnostics"`
	EnrolledAt  time.Time         `json:"enrolled_at"`
	// Revoked is the gateway's word that this device was revoked.
	Revoked string `json:"revoked,omitempty"`
}

// decisionRecord is one decision applied, as kept.
type decisionRecord struct {
	At       time.Time         `json:"at"`
	Network  string            `json:"network"`
	Decision localapi.Decision `json:"decision"`
}

// defaultSettings are a fresh install's: auto mode, connect when enrolled,
// no kill switch unless the company requires one, the best engine.
func defaultSettings() localapi.Settings {
	return localapi.Settings{Mode: localapi.ModeAuto, Connect: true, Engine: EngineAuto}
}

// New validates cfg and returns a daemon ready to Run.
func New(cfg Config, opts Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tetherd: %w", err)
	}
	cfg = cfg.withDefaults()
	d := &Daemon{cfg: cfg, logger: opts.Logger, now: opts.Now, netw: opts.NetWatcher, bus: newBus(),
		ready: make(chan struct{}), kick: make(chan struct{}, 1), settings: defaultSettings(), start: time.Now(),
		adv: monitor.Advisor{Config: monitor.DefaultConfig()}}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.netw == nil {
		d.netw = newNetWatcher(d.logger)
	}
	return d, nil
}

// mono is the monotonic clock: time since New.
func (d *Daemon) mono() time.Duration { return time.Since(d.start) }

// Ready is closed once the local API accepts requests.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

func (d *Daemon) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run loads the state directory, serves the local API and keeps the
// tunnel as the settings and the policy say until ctx is done; then it
// takes the tunnel down, removes its socket and returns nil. It returns
// an error if the daemon cannot start.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.load(); err != nil {
		return err
	}
	gid, err := lookupGroup(d.cfg.SocketGroup)
	if err != nil {
		return fmt.Errorf("tetherd: socket_group: %w", err)
	}
	sock, err := listenSocket(d.cfg.Socket, gid)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.since = d.now()
	d.mu.Unlock()
	d.adoptLeftover(ctx)
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second, ConnContext: peerContext,
		ErrorLog: slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sock) }()
	close(d.ready)
	d.logger.Info("tetherd running", "socket", d.cfg.Socket, "state", d.cfg.StateDir, "version", version.Version)

	loopCtx, stopLoop := context.WithCancel(ctx)
	d.mu.Lock()
	d.bgCtx = loopCtx
	d.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { d.loop(loopCtx) })
	if d.cfg.Monitor != "off" {
		m := d.newMonitor()
		d.mu.Lock()
		d.mon = m
		d.mu.Unlock()
		wg.Go(func() { m.Run(loopCtx) })
	}

	var runErr error
	select {
	case err := <-errc:
		runErr = fmt.Errorf("tetherd: local API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	if err := srv.Shutdown(sctx); err != nil && runErr == nil && !errors.Is(err, http.ErrServerClosed) {
		// Event streams never end by themselves.
		srv.Close()
	}
	cancel()
	stopLoop()
	wg.Wait()
	d.bg.Wait() // the monitor's checks
	d.ops.Lock()
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	d.takeDown(context.Background(), "tetherd stopped")
	d.release(context.Background(), "tetherd stopped")
	d.ops.Unlock()
	if err := sock.remove(); err != nil {
		d.logger.Warn("socket left behind", "socket", d.cfg.Socket, "err", err)
	}
	d.logger.Info("tetherd stopped")
	return runErr
}

// load reads the state directory. A corrupt file is set aside and
// reported in the status; the daemon starts without it.
func (d *Daemon) load() error {
	st, err := openStore(d.cfg.StateDir, d.now)
	if err != nil {
		return fmt.Errorf("tetherd: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st = st
	note := func(err error) {
		if err != nil {
			d.problems = append(d.problems, err.Error())
			d.logger.Error("state directory", "err", err)
		}
	}
	var s localapi.Settings
	if ok, err := st.load(fileSettings, &s); ok {
		d.settings = normalizeSettings(s)
	} else {
		note(err)
	}
	var rec enrollRecord
	if ok, err := st.load(fileEnrollment, &rec); ok {
		key, kerr := tunnel.ReadKeyFile(st.path(fileKey))
		cred, cerr := readSecret(st.path(fileCredential))
		switch {
		case kerr != nil:
			note(fmt.Errorf("the enrollment's private key: %w; enroll again", kerr))
		case cerr != nil:
			note(fmt.Errorf("the device credential: %w; enroll again", cerr))
		default:
			d.enr, d.key, d.cred = &rec, key, cred
		}
	} else {
		note(err)
	}
	reps, errs := loadReports[report.Report](st)
	d.reports = reps
	for _, e := range errs {
		note(e)
	}
	if ok, err := st.load(fileDecisions, &d.decisions); !ok {
		note(err)
	}
	return nil
}

func normalizeSettings(s localapi.Settings) localapi.Settings {
	if s.Mode == "" {
		s.Mode = localapi.ModeAuto
	}
	if s.Engine == "" {
		s.Engine = EngineAuto
	}
	return s
}

// loop is the reconcile loop: every tick, and whenever something
// changes, it observes, computes the state and starts what the state
// calls for.
func (d *Daemon) loop(ctx context.Context) {
	nets := d.netw.Watch(ctx)
	// Nothing is decided before the daemon knows which network it is on:
	// a report kept from before a restart may be of another.
	select {
	case n, ok := <-nets:
		if ok {
			d.onNetwork(n)
		}
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		d.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case n, ok := <-nets:
			if !ok {
				nets = nil
				continue
			}
			d.onNetwork(n)
		case <-t.C:
		case <-d.kick:
		}
	}
}

// onNetwork records a settled network change.
func (d *Daemon) onNetwork(n network) {
	d.mu.Lock()
	defer d.mu.Unlock()
	first := d.network == (network{})
	if n.ID() == d.network.ID() && !first {
		d.network = n
		return
	}
	d.logger.Info("network changed", "interface", n.Interface, "router", n.Router, "id", n.ID())
	d.network = n
	d.lineMethod = ""
	if d.mon != nil {
		d.mon.Restart()
	}
	if !first && d.eng != nil {
		d.netChanged = true
	}
}

// inputsLocked gathers what nextState reads.
func (d *Daemon) inputsLocked() inputs {
	in := inputs{Enrolled: d.enr != nil, WantUp: d.settings.Connect, FailClosed: d.failClosedLocked(),
		Diagnosing: d.diagnosing > 0, NetworkChanged: d.netChanged, EngineUp: d.eng != nil, EngineError: d.engErr,
		EngineSince: d.engSince, LastAnswer: d.lastAnswer, Now: d.mono()}
	if d.enr != nil {
		in.Revoked, in.Endpoint = d.enr.Revoked, d.enr.Enrollment.Endpoint
	}
	if d.eng != nil {
		if ep := d.eng.Status().Endpoint; ep != "" {
			in.Endpoint = ep
		}
	}
	return in
}

// failClosedLocked reports whether the kill switch applies: the
// company requires it, or allows it and the employee chose it. Only the
// TUN engine can hold it.
func (d *Daemon) failClosedLocked() bool {
	if d.enr == nil {
		return false
	}
	want := false
	switch d.enr.Policy.FailClosed {
	case gwapi.FailClosedRequired:
		want = true
	case gwapi.FailClosedOptional:
		want = d.settings.FailClosed
	}
	if !want {
		return false
	}
	if d.eng != nil {
		return d.eng.Kind() == EngineTUN
	}
	kind, err := chooseEngine(d.settings.Engine)
	return err == nil && kind == EngineTUN
}

// reconcile observes the engine, publishes a state change, and starts
// the operation the state calls for, if none is running.
func (d *Daemon) reconcile(ctx context.Context) {
	d.mu.Lock()
	now := d.mono()
	if d.eng != nil {
		s := d.eng.Status()
		if s.RxBytes != d.lastRx {
			// The tunnel probes the gateway every second: new bytes in
			// are the gateway answering.
			d.lastRx, d.lastAnswer = s.RxBytes, now
		}
		if hs := d.answers.observe(s.LastHandshake, now); hs > d.lastAnswer {
			d.lastAnswer = hs
		}
	}
	state, reason := nextState(d.inputsLocked())
	if state != d.state || reason != d.reason && state != localapi.StateDegraded && state != localapi.StateConnecting {
		if state != d.state {
			d.logger.Info("state", "from", d.state, "to", state, "reason", reason)
		}
		d.state, d.reason = state, reason
		d.bus.publish(localapi.Event{Type: localapi.EventState, Time: d.now(), State: &localapi.StateEvent{State: state, Reason: reason}})
	} else {
		d.reason = reason
	}
	op := d.nextOpLocked(state, now)
	if op != nil {
		d.busy = true
	}
	d.mu.Unlock()
	if op != nil {
		go func() {
			d.ops.Lock()
			op(ctx)
			d.ops.Unlock()
			d.mu.Lock()
			d.busy = false
			d.mu.Unlock()
			d.wake()
		}()
	}
}

// nextOpLocked is the operation the state calls for, nil if none (or
// one is already running).
func (d *Daemon) nextOpLocked(state localapi.State, now time.Duration) func(context.Context) {
	if d.busy {
		return nil
	}
	enrolled := d.enr != nil && d.enr.Revoked == ""
	failClosed := d.failClosedLocked()
	switch {
	case d.enr != nil && d.enr.Revoked != "" && d.eng != nil:
		return func(ctx context.Context) { d.takeDown(ctx, "revoked") }
	case d.held && d.eng == nil && (!enrolled || !failClosed):
		return func(ctx context.Context) { d.release(ctx, "the kill switch no longer applies") }
	case !enrolled:
		return nil
	case d.checkDueLocked(state, now):
		d.deviceChecked = now
		return d.checkDevice
	case !d.settings.Connect && d.eng != nil:
		return func(ctx context.Context) { d.takeDown(ctx, "the employee's down") }
	case d.settings.Connect && d.netChanged:
		return d.rebind
	case d.settings.Connect && d.eng == nil && (d.engTried == 0 || now-d.engTried >= connectRetry):
		d.engTried = now
		return func(ctx context.Context) { _, _ = d.connect(ctx, "") }
	case failClosed && d.eng == nil && !d.held && (d.heldTried == 0 || now-d.heldTried >= connectRetry):
		// The state says nothing leaks with the tunnel down: make it so.
		d.heldTried = now
		return d.block
	}
	return nil
}

// checkDueLocked: ask the gateway about this device hourly, and every few
// seconds while the tunnel is in trouble.
func (d *Daemon) checkDueLocked(state localapi.State, now time.Duration) bool {
	if d.deviceChecked == 0 {
		return true
	}
	since := now - d.deviceChecked
	trouble := d.eng != nil && (state == localapi.StateDegraded || state == localapi.StateConnecting || state == localapi.StateBlocked)
	return since >= policyRefresh || (trouble && since >= troubleCheck)
}

// Status is the daemon's current status.
func (d *Daemon) Status() localapi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.statusLocked()
}

func (d *Daemon) statusLocked() localapi.Status {
	st := localapi.Status{State: d.state, Reason: d.reason, Version: version.Version, Since: d.since,
		FailClosed: d.failClosedLocked(), Gateway: d.gw, Problems: d.problems}
	if st.State == "" {
		st.State, st.Reason = nextState(d.inputsLocked())
	}
	if d.enr != nil {
		st.Enrollment = &localapi.EnrollmentStatus{Gateway: d.enr.Gateway, PeerID: d.enr.Enrollment.PeerID,
			Address: d.enr.Enrollment.Address, Revoked: d.enr.Revoked}
		st.Gateway.URL = d.enr.Gateway
	}
	if d.applied != nil {
		dec := toLocal(d.applied.Decision)
		st.Decision = &dec
	}
	if d.eng != nil {
		st.Mode, st.Engine = d.engMode, d.eng.Kind()
		ts := d.eng.Status()
		age := -1.0
		if !ts.LastHandshake.IsZero() {
			age = d.now().Sub(ts.LastHandshake).Seconds()
		}
		st.Tunnel = &localapi.TunnelStatus{Endpoint: ts.Endpoint, HandshakeAgeS: age, RxBytes: ts.RxBytes, TxBytes: ts.TxBytes, Health: string(ts.Health)}
		st.Proxies = d.eng.Proxies()
	}
	if len(d.reports) > 0 {
		r := d.reports[0]
		ls := &localapi.ReportSummary{Summary: r.Summary, At: r.StartedAt, Mode: r.Mode, Verdicts: []report.VerdictID{}}
		for _, v := range r.Verdicts {
			ls.Verdicts = append(ls.Verdicts, v.ID)
		}
		st.LastReport = ls
	}
	return st
}

func toLocal(dec policy.Decision) localapi.Decision {
	out := localapi.Decision{Mode: dec.Mode, Reasons: []localapi.Reason{}}
	for _, r := range dec.Reasons {
		out.Reasons = append(out.Reasons, localapi.Reason{ID: r.ID, Text: r.Text})
	}
	return out
}

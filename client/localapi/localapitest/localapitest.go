// Package localapitest is a fake tetherd for tests: it serves the whole
// local API, version 1, through localapi.Handler as the daemon does, on a
// unix socket in the test's temporary directory, and answers what the
// test sets. It records every request it receives, so a test can assert
// what a client sent. Tests of the CLI and the tray use it in place of a
// daemon.
//
// Like tetherd, the operations change the status it answers: up makes it
// connected in the decision's mode, down disconnected, enroll
// disconnected and enrolled, a diagnosis sets its last report; each
// change of state is published as a state event. SetStatus replaces the
// status whole.
//
// Boundaries: it imports client/localapi, netdiag/report (which the API
// carries) and the standard library only, never the daemon (package
// client), so the tray's tests can use it.
package localapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/netdiag/report"
)

// WatcherBuffer is how many events a watcher may fall behind before the
// fake drops it, as tetherd drops a watcher too slow to keep up.
const WatcherBuffer = 64

// maxRequest bounds a request body it records: the API's requests are a
// few small fields.
const maxRequest = 16 << 10

// Request is one request the fake received.
type Request struct {
	Method, Path string
	// Body is the request's body as sent; empty for none.
	Body []byte
}

// Decode unmarshals the request's body into v.
func (r Request) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("localapitest: %s %s: %w", r.Method, r.Path, err)
	}
	return nil
}

// Daemon is a fake tetherd. Create it with New; its methods are safe for
// concurrent use.
type Daemon struct {
	// Socket is the unix socket it serves on.
	Socket string

	stop func()

	mu       sync.Mutex
	status   localapi.Status
	fail     *localapi.Error            // every call, until SetStatus
	failOn   map[string]*localapi.Error // one path, until FailOn(path, nil)
	decision *localapi.Decision         // up's answer; nil: the mode asked
	upState  localapi.State             // the state up leaves; "" is connected
	upReason string
	refused  map[string]string   // mode → the refusal's message
	report   *report.Report      // diagnose's answer
	progress []localapi.Progress // published before it
	reports  []report.Report     // newest first
	settings localapi.Settings
	line     localapi.Line
	requests []Request
	watchers map[*watcher]struct{}
}

type watcher struct{ ch chan localapi.Event }

// New starts a fake daemon whose status is StateStarting until the test
// calls SetStatus, with the settings' defaults (auto mode, auto engine).
// The test's cleanup stops it.
func New(tb testing.TB) *Daemon {
	tb.Helper()
	d := &Daemon{
		status:   localapi.Status{State: localapi.StateDisconnected, Version: "localapitest", Since: time.Now()},
		failOn:   map[string]*localapi.Error{},
		refused:  map[string]string{},
		settings: localapi.Settings{Mode: localapi.ModeAuto, Engine: "auto"},
		line:     localapi.Line{Finding: localapi.LineFinding{Kind: "unknown", Text: "not enough samples yet"}},
		watchers: map[*watcher]struct{}{},
	}
	mux := http.NewServeMux()
	route := func(pattern, path string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if e := d.failure(path); e != nil {
				localapi.WriteError(w, e)
				return
			}
			h(w, r)
		})
	}
	route("GET "+localapi.PathStatus, localapi.PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		localapi.WriteJSON(w, d.Status())
	})
	route("POST "+localapi.PathUp, localapi.PathUp, d.handleUp)
	route("POST "+localapi.PathDown, localapi.PathDown, d.handleDown)
	route("POST "+localapi.PathEnroll, localapi.PathEnroll, d.handleEnroll)
	route("POST "+localapi.PathDiagnose, localapi.PathDiagnose, d.handleDiagnose)
	route("GET "+localapi.PathReports, localapi.PathReports, func(w http.ResponseWriter, _ *http.Request) {
		d.mu.Lock()
		rs := slices.Clone(d.reports)
		d.mu.Unlock()
		if rs == nil {
			rs = []report.Report{}
		}
		localapi.WriteJSON(w, rs)
	})
	route("GET "+localapi.PathReportLatest, localapi.PathReportLatest, func(w http.ResponseWriter, _ *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.reports) == 0 {
			localapi.WriteError(w, &localapi.Error{Status: http.StatusNotFound, Code: localapi.CodeNotFound, Message: "no report yet: `tether diag` runs one"})
			return
		}
		localapi.WriteJSON(w, d.reports[0])
	})
	route("GET "+localapi.PathSettings, localapi.PathSettings, func(w http.ResponseWriter, _ *http.Request) {
		localapi.WriteJSON(w, d.Settings())
	})
	route("PUT "+localapi.PathSettings, localapi.PathSettings, d.handleSettings)
	route("GET "+localapi.PathEvents, localapi.PathEvents, d.handleEvents)
	route("GET "+localapi.PathLine, localapi.PathLine, func(w http.ResponseWriter, _ *http.Request) {
		d.mu.Lock()
		l := d.line
		d.mu.Unlock()
		if l.Samples == nil {
			l.Samples = []localapi.LineSample{}
		}
		localapi.WriteJSON(w, l)
	})
	route("POST "+localapi.PathSnooze, localapi.PathSnooze, func(w http.ResponseWriter, r *http.Request) {
		var req localapi.SnoozeRequest
		if !decode(w, r, &req) {
			return
		}
		dur, err := time.ParseDuration(req.For)
		if err != nil || dur <= 0 {
			localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: "for: want a duration, e.g. 1h"})
			return
		}
		until := time.Now().Add(dur).UTC()
		d.mu.Lock()
		if d.line.Snoozed == nil {
			d.line.Snoozed = map[report.SuggestionID]time.Time{}
		}
		d.line.Snoozed[req.ID] = until
		d.mu.Unlock()
		localapi.WriteJSON(w, localapi.SnoozeAnswer{ID: req.ID, Until: until})
	})
	d.Socket, d.stop = serve(tb, d.record(localapi.Handler(mux)))
	return d
}

// SetStatus sets the status the daemon answers, and ends a Fail.
func (d *Daemon) SetStatus(st localapi.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status, d.fail = st, nil
}

// Status returns the status the daemon answers now.
func (d *Daemon) Status() localapi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Fail makes every call answer e until SetStatus.
func (d *Daemon) Fail(e *localapi.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cp := *e
	d.fail = &cp
}

// FailOn makes every call of path (a localapi Path constant) answer e,
// until FailOn(path, nil).
func (d *Daemon) FailOn(path string, e *localapi.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e == nil {
		delete(d.failOn, path)
		return
	}
	cp := *e
	d.failOn[path] = &cp
}

func (d *Daemon) failure(path string) *localapi.Error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	return d.failOn[path]
}

// SetDecision sets what up answers (and then shows in the status). Until
// it is called, up answers the mode asked (full for auto) without
// reasons.
func (d *Daemon) SetDecision(dec localapi.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.decision = &dec
}

// SetLine sets what GET /v1/line answers (the line monitor's view);
// until then the finding is "unknown". A snooze adds to it.
func (d *Daemon) SetLine(l localapi.Line) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.line = l
}

// UpLeaves makes up leave the daemon in state with reason (connecting,
// say, as tetherd is while the gateway does not answer) instead of
// connected.
func (d *Daemon) UpLeaves(state localapi.State, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.upState, d.upReason = state, reason
}

// RefuseMode makes up, and a PUT of settings, refuse mode (full or split)
// with CodeModeNotAllowed and message, as tetherd does for a mode company
// policy does not allow.
func (d *Daemon) RefuseMode(mode, message string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refused[mode] = message
}

// SetReport sets what a diagnosis answers: first each progress as a
// progress event, then rep as a report event and one suggestion event per
// suggestion, then rep as the answer, which also becomes the latest of
// the reports kept. Until it is called, a diagnosis fails with
// CodeInternal.
func (d *Daemon) SetReport(rep report.Report, progress ...localapi.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.report, d.progress = &rep, slices.Clone(progress)
}

// SetReports sets the reports kept, newest first.
func (d *Daemon) SetReports(rs ...report.Report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reports = slices.Clone(rs)
}

// SetSettings sets the settings the daemon keeps.
func (d *Daemon) SetSettings(s localapi.Settings) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settings = s
}

// Settings returns the settings the daemon keeps.
func (d *Daemon) Settings() localapi.Settings {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settings
}

// Requests returns the requests received so far, in order.
func (d *Daemon) Requests() []Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

// Sent returns the requests received so far for path, in order.
func (d *Daemon) Sent(path string) []Request {
	var out []Request
	for _, r := range d.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Publish sends ev to every watcher of the event stream, its Time set to
// now if zero. A state event also becomes the status's state and reason.
// Publish never blocks: a watcher more than WatcherBuffer events behind
// is dropped, its stream ended.
func (d *Daemon) Publish(ev localapi.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.publishLocked(ev)
}

func (d *Daemon) publishLocked(ev localapi.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Type == localapi.EventState && ev.State != nil {
		d.status.State, d.status.Reason = ev.State.State, ev.State.Reason
	}
	for w := range d.watchers {
		select {
		case w.ch <- ev:
		default:
			d.dropLocked(w)
		}
	}
}

// setStateLocked changes the status's state and publishes it, if it
// changed.
func (d *Daemon) setStateLocked(s localapi.State, reason string) {
	if d.status.State == s && d.status.Reason == reason {
		return
	}
	d.publishLocked(localapi.Event{Type: localapi.EventState, State: &localapi.StateEvent{State: s, Reason: reason}})
}

// Watchers returns how many event streams are open.
func (d *Daemon) Watchers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.watchers)
}

// DropWatchers ends every event stream, as tetherd does to a watcher too
// slow to keep up.
func (d *Daemon) DropWatchers() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for w := range d.watchers {
		d.dropLocked(w)
	}
}

func (d *Daemon) dropLocked(w *watcher) {
	if _, ok := d.watchers[w]; ok {
		delete(d.watchers, w)
		close(w.ch)
	}
}

// Client returns a new local API client for the daemon.
func (d *Daemon) Client() *localapi.Client { return &localapi.Client{Socket: d.Socket} }

// Close stops the daemon and removes its socket, as a daemon that exits
// does: clients then get localapi.ErrNotRunning. It may be called more
// than once.
func (d *Daemon) Close() { d.stop() }

// record keeps every request, with its body, before h serves it.
func (d *Daemon) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
		if err != nil || len(body) > maxRequest {
			localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: "localapitest: the request body is unreadable or over 16 KiB"})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		d.mu.Lock()
		d.requests = append(d.requests, Request{Method: r.Method, Path: r.URL.Path, Body: body})
		d.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// decode reads a request's JSON body into v as tetherd does: unknown
// fields are refused, an empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest,
			Message: "the request is not what " + r.URL.Path + " takes: " + err.Error()})
		return false
	}
	return true
}

func (d *Daemon) enrolledLocked() bool {
	return d.status.State != localapi.StateNeedsEnrollment
}

func (d *Daemon) handleUp(w http.ResponseWriter, r *http.Request) {
	var req localapi.UpRequest
	if !decode(w, r, &req) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.enrolledLocked() {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusConflict, Code: localapi.CodeNotEnrolled, Message: "this device is not enrolled: `tether enroll URL --token T`"})
		return
	}
	mode := req.Mode
	if mode == "" {
		mode = d.settings.Mode
	}
	switch mode {
	case localapi.ModeAuto, localapi.ModeFull, localapi.ModeSplit:
	default:
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: fmt.Sprintf("mode %q: want auto, full or split", mode)})
		return
	}
	if msg, ok := d.refused[mode]; ok {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusForbidden, Code: localapi.CodeModeNotAllowed, Message: msg})
		return
	}
	dec := localapi.Decision{Mode: mode, Reasons: []localapi.Reason{}}
	if mode == localapi.ModeAuto {
		dec.Mode = localapi.ModeFull
	}
	if d.decision != nil {
		dec = *d.decision
	}
	d.settings.Connect = true
	if req.Mode != "" {
		d.settings.Mode = req.Mode
	}
	d.status.Mode, d.status.Decision = dec.Mode, &dec
	if d.status.Engine == "" {
		d.status.Engine = "userspace"
	}
	d.publishLocked(localapi.Event{Type: localapi.EventDecision, Decision: &dec})
	if d.upState != "" {
		d.setStateLocked(d.upState, d.upReason)
	} else {
		d.setStateLocked(localapi.StateConnected, "")
	}
	localapi.WriteJSON(w, dec)
}

func (d *Daemon) handleDown(w http.ResponseWriter, r *http.Request) {
	if !decode(w, r, &struct{}{}) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settings.Connect = false
	if d.enrolledLocked() {
		d.status.Mode, d.status.Engine, d.status.Tunnel, d.status.Proxies = "", "", nil, nil
		d.setStateLocked(localapi.StateDisconnected, "the tunnel is down by choice: `tether up` connects")
	}
	localapi.WriteJSON(w, d.status)
}

func (d *Daemon) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req localapi.EnrollRequest
	if !decode(w, r, &req) {
		return
	}
	if req.URL == "" || req.Token == "" {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest,
			Message: "enroll needs the gateway's URL and a token (`tether enroll URL --token T`)"})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Enrollment = &localapi.EnrollmentStatus{Gateway: req.URL, PeerID: 1, Address: "10.77.0.2"}
	d.status.Gateway.URL = req.URL
	d.status.Mode, d.status.Engine, d.status.Tunnel, d.status.Decision = "", "", nil, nil
	d.setStateLocked(localapi.StateDisconnected, "enrolled: `tether up` connects")
	localapi.WriteJSON(w, d.status)
}

func (d *Daemon) handleDiagnose(w http.ResponseWriter, r *http.Request) {
	var req localapi.DiagnoseRequest
	if !decode(w, r, &req) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.enrolledLocked() {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusConflict, Code: localapi.CodeNotEnrolled,
			Message: "diagnosing needs an enrollment, which names the gateway: `tether enroll URL --token T`, or `tether diag --server URL` without the daemon"})
		return
	}
	if d.report == nil {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusInternalServerError, Code: localapi.CodeInternal,
			Message: "localapitest: no report set (the test calls SetReport)"})
		return
	}
	for _, p := range d.progress {
		d.publishLocked(localapi.Event{Type: localapi.EventProgress, Progress: &p})
	}
	rep := *d.report
	d.publishLocked(localapi.Event{Type: localapi.EventReport, Report: &rep})
	for i := range rep.Suggestions {
		d.publishLocked(localapi.Event{Type: localapi.EventSuggestion, Suggestion: &rep.Suggestions[i]})
	}
	d.reports = append([]report.Report{rep}, d.reports...)
	if len(d.reports) > localapi.ReportsKept {
		d.reports = d.reports[:localapi.ReportsKept]
	}
	sum := &localapi.ReportSummary{Summary: rep.Summary, At: rep.StartedAt, Mode: rep.Mode, Verdicts: []report.VerdictID{}}
	for _, v := range rep.Verdicts {
		sum.Verdicts = append(sum.Verdicts, v.ID)
	}
	d.status.LastReport = sum
	localapi.WriteJSON(w, rep)
}

func (d *Daemon) handleSettings(w http.ResponseWriter, r *http.Request) {
	var s localapi.Settings
	if !decode(w, r, &s) {
		return
	}
	switch s.Mode {
	case localapi.ModeAuto, localapi.ModeFull, localapi.ModeSplit:
	default:
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: fmt.Sprintf("mode %q: want auto, full or split", s.Mode)})
		return
	}
	switch s.Engine {
	case "auto", "tun", "userspace":
	default:
		localapi.WriteError(w, &localapi.Error{Status: http.StatusBadRequest, Code: localapi.CodeBadRequest, Message: fmt.Sprintf("engine %q: want auto, tun or userspace", s.Engine)})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if msg, ok := d.refused[s.Mode]; ok {
		localapi.WriteError(w, &localapi.Error{Status: http.StatusForbidden, Code: localapi.CodeModeNotAllowed, Message: msg})
		return
	}
	d.settings = s
	localapi.WriteJSON(w, s)
}

// handleEvents streams events as NDJSON, the current state first, until
// the caller goes away or the watcher is dropped.
func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	wt := &watcher{ch: make(chan localapi.Event, WatcherBuffer)}
	d.mu.Lock()
	wt.ch <- localapi.Event{Type: localapi.EventState, Time: time.Now(),
		State: &localapi.StateEvent{State: d.status.State, Reason: d.status.Reason}}
	d.watchers[wt] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.dropLocked(wt)
		d.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-wt.ch:
			if !ok {
				return // dropped
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// Serve serves h on a unix socket in the test's temporary directory until
// the test ends, and returns the socket's path. It serves h as it is,
// without localapi.Handler, so a test can answer what no daemon would.
func Serve(tb testing.TB, h http.Handler) string {
	tb.Helper()
	sock, _ := serve(tb, h)
	return sock
}

// serve serves h until the returned stop is called or the test ends.
func serve(tb testing.TB, h http.Handler) (string, func()) {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "tetherd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatalf("localapitest: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	stop := sync.OnceFunc(func() {
		srv.Close() // closes ln, which removes the socket, and every stream
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("localapitest: serving %s: %v", sock, err)
		}
	})
	tb.Cleanup(stop)
	return sock, stop
}

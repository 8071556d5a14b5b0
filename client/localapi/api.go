package localapi

import (
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// Paths of the local API, version 1. Every request and answer is JSON;
// every error answer an Error.
const (
	// PathUp takes an UpRequest and answers with the Decision applied.
	PathUp = "/v1/up"
	// PathDown takes the tunnel down and answers with the Status.
	PathDown = "/v1/down"
	// PathEnroll takes an EnrollRequest and answers with the Status.
	PathEnroll = "/v1/enroll"
	// PathDiagnose takes a DiagnoseRequest, runs the diagnosis (progress
	// on the event stream) and answers with its report.
	PathDiagnose = "/v1/diagnose"
	// PathReports answers with the reports kept, newest first (at most
	// ReportsKept); PathReportLatest with the latest one alone.
	PathReports      = "/v1/reports"
	PathReportLatest = "/v1/reports/latest"
	// PathSettings answers GET with the Settings and takes them with PUT.
	PathSettings = "/v1/settings"
	// PathEvents is the event stream: newline-delimited JSON Events.
	PathEvents = "/v1/events"
	// PathLine (GET, ?since=DURATION, default 1h, at most 24h) is the
	// line monitor: its finding and its samples.
	PathLine = "/v1/line"
	// PathSnooze (POST SnoozeRequest) holds a suggestion back.
	PathSnooze = "/v1/suggestions/snooze"
)

// ReportsKept is how many reports the daemon keeps.
const ReportsKept = 20

// Error codes of the daemon's operations, beside the generic ones.
const (
	// CodeNotEnrolled: the operation needs an enrollment.
	CodeNotEnrolled ErrorCode = "not_enrolled"
	// CodeModeNotAllowed: company policy does not allow the mode asked.
	CodeModeNotAllowed ErrorCode = "mode_not_allowed"
	// CodeEnrollFailed: the gateway refused or could not be reached.
	CodeEnrollFailed ErrorCode = "enroll_failed"
	// CodeBusy: another diagnosis is running.
	CodeBusy ErrorCode = "busy"
	// CodeNotConnected: the request needs the tunnel up.
	CodeNotConnected ErrorCode = "not_connected"
	// CodePermission: the caller may not use the daemon.
	CodePermission ErrorCode = "permission"
)

// Modes the employee may ask for.
const (
	ModeAuto  = "auto"
	ModeFull  = "full"
	ModeSplit = "split"
)

// UpRequest asks for the tunnel up in a mode: auto (the daemon decides),
// full or split (where company policy allows it). Empty means the
// settings' mode.
type UpRequest struct {
	Mode string `json:"mode"`
}

// EnrollRequest enrolls this device with a gateway.
type EnrollRequest struct {
	// URL is the gateway's API, e.g. https://gw.example.com:8443.
	URL string `json:"url"`
	// Token is the enrollment token an admin created.
	Token string `json:"token"`
	// Pin is the gateway certificate's pin (sha256:…); empty trusts the
	// system's roots.
	Pin string `json:"pin,omitempty"`
	// Label names the device to the admins; empty means the host name.
	Label string `json:"label,omitempty"`
}

// DiagnoseRequest runs a diagnosis. A full one loads the line for a few
// seconds.
type DiagnoseRequest struct {
	Quick bool `json:"quick"`
	// Uplinks measures every uplink (not the tunnel) in one run, each
	// bound to its interface, and compares them (report.Uplinks). It
	// takes a full run's time per uplink; Quick does not apply.
	Uplinks bool `json:"uplinks,omitempty"`
	// CompareTunnel measures the path to the gateway beside the tunnel
	// and through it in one run (report.Tunnel); it needs the tunnel up
	// (else CodeNotConnected). A full diagnosis while connected does so
	// anyway; Quick does not apply.
	CompareTunnel bool `json:"compare_tunnel,omitempty"`
}

// Settings are the employee's choices, kept by the daemon.
type Settings struct {
	// Mode is auto, full or split.
	Mode string `json:"mode"`
	// Connect keeps the tunnel up: at start and after a network change.
	Connect bool `json:"connect"`
	// FailClosed turns the kill switch on where company policy leaves it
	// to the employee (fail_closed: optional).
	FailClosed bool `json:"fail_closed"`
	// Engine is auto (TUN when the daemon may create a device, else
	// userspace), tun or userspace.
	Engine string `json:"engine"`
}

// Event types.
const (
	EventState      = "state"
	EventProgress   = "progress"
	EventReport     = "report"
	EventDecision   = "decision"
	EventSuggestion = "suggestion"
	// EventSuggestionCleared withdraws a suggestion: Suggestion carries
	// its ID and, in Summary, why (the line recovered, a snooze).
	EventSuggestionCleared = "suggestion_cleared"
)

// Event is one line of the event stream. Type says which of the other
// fields is set.
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"` // RFC 3339
	// State is set for "state": the daemon's new state and why.
	State *StateEvent `json:"state,omitempty"`
	// Progress is set for "progress": a diagnosis under way.
	Progress *Progress `json:"progress,omitempty"`
	// Report is set for "report": a finished diagnosis.
	Report *report.Report `json:"report,omitempty"`
	// Decision is set for "decision": a mode decided and applied.
	Decision *Decision `json:"decision,omitempty"`
	// Suggestion is set for "suggestion": something the employee can do
	// now, from the latest report or the line monitor; and for
	// "suggestion_cleared", the one withdrawn.
	Suggestion *report.Suggestion `json:"suggestion,omitempty"`
}

// Line is the line monitor's view: what it finds now and the samples
// behind it.
type Line struct {
	// Finding is the latest: kind is unknown, ok, bloated, saturated,
	// own_load or lossy; text says it with the figures.
	Finding LineFinding `json:"finding"`
	// Target and Method say what the monitor probes, and how.
	Target string `json:"target,omitempty"`
	Method string `json:"method,omitempty"`
	// Active is the suggestion standing, if any; Snoozed maps a snoozed
	// suggestion to when its snooze ends.
	Active  report.SuggestionID               `json:"active,omitempty"`
	Snoozed map[report.SuggestionID]time.Time `json:"snoozed,omitempty"`
	// Probes is how many probes the monitor has sent; TrafficBps its
	// own traffic, both ways, in bit/s.
	Probes     int     `json:"probes"`
	TrafficBps float64 `json:"traffic_bps"`
	// Samples, oldest first.
	Samples []LineSample `json:"samples"`
}

// LineFinding is a finding of the line monitor.
type LineFinding struct {
	Kind       string  `json:"kind"`
	Text       string  `json:"text"`
	BaselineMS float64 `json:"baseline_ms"`
	CurrentMS  float64 `json:"current_ms"`
	DelayedPct float64 `json:"delayed_pct"`
	LostPct    float64 `json:"lost_pct"`
	ForS       float64 `json:"for_s"`
	// OwnMbps is nil when the interface's counters are unknown.
	OwnMbps *float64 `json:"own_mbps,omitempty"`
	Samples int      `json:"samples"`
}

// LineSample is one probe: when, its round trip (nil: lost) and this
// computer's own traffic meanwhile (nil: unknown).
type LineSample struct {
	Time    time.Time `json:"t"`
	RTTMS   *float64  `json:"rtt_ms,omitempty"`
	OwnMbps *float64  `json:"own_mbps,omitempty"`
}

// SnoozeRequest holds suggestion ID back for For (a Go duration: "1h").
type SnoozeRequest struct {
	ID  report.SuggestionID `json:"id"`
	For string              `json:"for"`
}

// SnoozeAnswer says until when.
type SnoozeAnswer struct {
	ID    report.SuggestionID `json:"id"`
	Until time.Time           `json:"until"`
}

// StateEvent is a change of the daemon's state.
type StateEvent struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Progress is a diagnosis under way.
type Progress struct {
	// Stage names the step: "latency", "download", "upload", "dns", ...
	Stage string `json:"stage"`
	// Text says it for a person.
	Text string `json:"text"`
}

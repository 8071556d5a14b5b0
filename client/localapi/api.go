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
	// now, from the latest report.
	Suggestion *report.Suggestion `json:"suggestion,omitempty"`
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

package localapi

import (
	"fmt"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// The API's version and where it is served.
const (
	// APIVersion is the version of the local API this package speaks. It
	// changes when an answer changes incompatibly; the paths carry it too.
	APIVersion = 1
	// HeaderAPIVersion carries APIVersion on every request and answer.
	HeaderAPIVersion = "Tether-Api-Version"
	// DefaultSocket is the daemon's socket on a system install: where
	// tetherd listens and its clients dial unless told otherwise.
	DefaultSocket = "/run/tether/tetherd.sock"
)

// apiVersion is APIVersion as it appears in HeaderAPIVersion.
var apiVersion = fmt.Sprint(APIVersion)

// PathStatus returns the daemon's Status.
const PathStatus = "/v1/status"

// State is the daemon's overall state.
type State string

// The daemon's states. Their strings are a contract: scripts, the tray
// and the helpdesk read them.
const (
	// StateNeedsEnrollment: no enrollment (or the company revoked it):
	// `tether enroll` is the next step.
	StateNeedsEnrollment State = "needs_enrollment"
	// StateDisconnected: enrolled, and the tunnel is down by choice.
	StateDisconnected State = "disconnected"
	// StateDiagnosing: measuring the network before deciding a mode.
	StateDiagnosing State = "diagnosing"
	// StateConnecting: bringing the tunnel up, or waiting for the
	// gateway to answer again.
	StateConnecting State = "connecting"
	// StateConnected: the gateway answers through the tunnel.
	StateConnected State = "connected"
	// StateDegraded: the tunnel is up but the gateway's answers falter.
	StateDegraded State = "degraded"
	// StateBlocked: the kill switch holds and the tunnel is down, so
	// nothing leaves this machine (nothing leaks).
	StateBlocked State = "blocked"
)

// Status is the body of PathStatus. The fields a script reads
// (`tether status --json`) are a contract: state, mode, engine, decision,
// tunnel and last_report keep their names and meanings.
type Status struct {
	State State `json:"state"`
	// Reason says why the daemon is in State, for a person; empty when
	// connected.
	Reason  string    `json:"reason,omitempty"`
	Version string    `json:"version"`
	Since   time.Time `json:"since"` // when the daemon started
	// Mode is the tunnel's mode while it is up: full or split; empty
	// when down.
	Mode string `json:"mode"`
	// Engine is the tunnel engine in use: tun or userspace; empty when
	// down.
	Engine string `json:"engine"`
	// Decision is the last mode decision, with its reasons.
	Decision *Decision `json:"decision,omitempty"`
	// Tunnel is the tunnel's health, while up.
	Tunnel *TunnelStatus `json:"tunnel,omitempty"`
	// LastReport sums up the latest diagnosis.
	LastReport *ReportSummary `json:"last_report,omitempty"`
	// Enrollment is this device's enrollment, absent when not enrolled.
	Enrollment *EnrollmentStatus `json:"enrollment,omitempty"`
	// FailClosed says the kill switch is on (policy or settings).
	FailClosed bool `json:"fail_closed"`
	// Proxies are the userspace engine's loopback proxies, absent with
	// the TUN engine.
	Proxies *Proxies `json:"proxies,omitempty"`
	// Gateway is what the daemon last learned about its gateway.
	Gateway GatewayStatus `json:"gateway"`
	// Problems are what the daemon could not use of its state (a corrupt
	// file it set aside, say), for a person to act on.
	Problems []string `json:"problems,omitempty"`
}

// Decision is a tunnel mode and why, as the daemon's policy decided it.
type Decision struct {
	Mode    string   `json:"mode"`
	Reasons []Reason `json:"reasons"`
}

// Reason is one reason for a decision: the rule or verdict that decided
// (its ID, a contract like verdict IDs) and a sentence for a person.
type Reason struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// TunnelStatus is the tunnel's health.
type TunnelStatus struct {
	Endpoint string `json:"endpoint"`
	// HandshakeAgeS is the seconds since the last WireGuard handshake,
	// -1 if none yet.
	HandshakeAgeS float64 `json:"handshake_age_s"`
	RxBytes       uint64  `json:"rx_bytes"`
	TxBytes       uint64  `json:"tx_bytes"`
	// Health is the engine's own word: connecting, up, stalled, down.
	Health string `json:"health"`
}

// ReportSummary is the latest report in brief.
type ReportSummary struct {
	Summary  string             `json:"summary"`
	Verdicts []report.VerdictID `json:"verdicts"`
	// At is when the diagnosis ran.
	At time.Time `json:"at"`
	// Mode is quick or full.
	Mode report.Mode `json:"mode"`
}

// EnrollmentStatus is this device's enrollment, without secrets.
type EnrollmentStatus struct {
	Gateway string `json:"gateway"` // the gateway's API URL
	PeerID  int64  `json:"peer_id"`
	Address string `json:"address"` // the tunnel address
	// Revoked is the gateway's word that this device was revoked.
	Revoked string `json:"revoked,omitempty"`
}

// Proxies are where the userspace engine's proxies listen.
type Proxies struct {
	SOCKS5 string `json:"socks5,omitempty"`
	HTTP   string `json:"http,omitempty"`
	DNS    string `json:"dns,omitempty"`
}

// GatewayStatus is what the daemon last learned about its gateway.
type GatewayStatus struct {
	URL       string    `json:"url"`
	Name      string    `json:"name,omitempty"`
	Reachable bool      `json:"reachable"`
	RTT       Duration  `json:"rtt,omitempty"` // of the last health check
	LastCheck time.Time `json:"last_check,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// Duration marshals as a string Go can parse ("1.2ms"), readable in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("localapi: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

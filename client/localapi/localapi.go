package localapi

import (
	"fmt"
	"time"
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

	// StateStarting: the daemon has not yet checked the gateway.
	StateStarting State = "starting"
	// StateReady: the gateway answered its last health check.
	StateReady State = "ready"
	// StateGatewayUnreachable: the last health check failed.
	StateGatewayUnreachable State = "gateway-unreachable"
)

// Status is the body of PathStatus.
type Status struct {
	State   State         `json:"state"`
	Version string        `json:"version"`
	Since   time.Time     `json:"since"` // when the daemon started
	Gateway GatewayStatus `json:"gateway"`
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

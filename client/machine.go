package client

import (
	"fmt"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
)

// Health thresholds of the connection, on the daemon's monotonic clock.
const (
	// degradedAfter: the tunnel pings the gateway every second; three
	// missed answers in a row mean calls stutter.
	degradedAfter = 3 * time.Second
	// lostAfter: WireGuard's own verdict on a silent peer (Keepalive-
	// Timeout 10 s + Rekey-Timeout 5 s, tunnel.StallAfter): the tunnel is
	// down, and the daemon reconnects.
	lostAfter = 15 * time.Second
	// handshakeTimeout: a gateway that answers at all answers a
	// handshake within a second or two, even over a loaded line; after
	// this long without one the employee hears why.
	handshakeTimeout = 5 * time.Second
)

// inputs are everything the daemon's state is computed from. Times are
// readings of a monotonic clock (time since the daemon started), never
// wall-clock times: a wall-clock jump (a laptop waking up, NTP) changes
// nothing here.
type inputs struct {
	// Enrolled: the daemon holds an enrollment.
	Enrolled bool
	// Revoked is the gateway's word that this device was revoked, with
	// its message; empty if not.
	Revoked string
	// WantUp: the employee (or auto-connect) wants the tunnel up.
	WantUp bool
	// FailClosed: the kill switch is required (policy) or chosen
	// (settings), so while the tunnel is down nothing may leave.
	FailClosed bool
	// Diagnosing: a diagnosis is deciding the mode (before the first
	// connect, or after a network change).
	Diagnosing bool
	// NetworkChanged: a network change is waiting to be handled.
	NetworkChanged bool
	// EngineUp: a tunnel engine is up.
	EngineUp bool
	// EngineError is why the last attempt to bring it up failed.
	EngineError string
	// Endpoint is the gateway's WireGuard endpoint, as the employee
	// should read it in a reason.
	Endpoint string
	// EngineSince is when the engine came up.
	EngineSince time.Duration
	// LastAnswer is when the gateway last answered through the tunnel (a
	// probe or a handshake); zero if never since the engine came up.
	LastAnswer time.Duration
	// Now is the monotonic reading of this computation.
	Now time.Duration
}

// nextState computes the daemon's state and the reason for it. It is
// pure: the state never drifts from what the daemon observed.
func nextState(in inputs) (localapi.State, string) {
	switch {
	case in.Revoked != "":
		return localapi.StateNeedsEnrollment, "the company revoked this device (" + in.Revoked + "): enroll again with a new token"
	case !in.Enrolled:
		return localapi.StateNeedsEnrollment, "this device is not enrolled: `tether enroll URL --token T`"
	case !in.WantUp && in.FailClosed:
		return localapi.StateBlocked, "the tunnel is down and the kill switch holds: nothing leaves this machine outside the tunnel"
	case !in.WantUp:
		return localapi.StateDisconnected, "the tunnel is down; `tether up` connects"
	case in.NetworkChanged || (in.Diagnosing && !in.EngineUp):
		return localapi.StateDiagnosing, "measuring this network to decide the tunnel mode"
	case !in.EngineUp:
		why := "bringing the tunnel up"
		if in.EngineError != "" {
			why = "the tunnel could not come up (" + in.EngineError + "); retrying"
		}
		if in.FailClosed && in.EngineError != "" {
			return localapi.StateBlocked, why + "; the kill switch holds meanwhile"
		}
		return localapi.StateConnecting, why
	}
	if in.LastAnswer == 0 {
		waited := in.Now - in.EngineSince
		if waited <= handshakeTimeout {
			return localapi.StateConnecting, "waiting for the gateway's first answer"
		}
		gw := "the gateway"
		if in.Endpoint != "" {
			gw = "gateway " + in.Endpoint
		}
		why := fmt.Sprintf("%s did not answer the WireGuard handshake within %d s: UDP may be blocked on this network; `tether diag` checks", gw, int(handshakeTimeout/time.Second))
		if in.FailClosed && waited > lostAfter {
			return localapi.StateBlocked, why + "; the kill switch holds meanwhile"
		}
		return localapi.StateConnecting, why
	}
	silent := in.Now - in.LastAnswer
	switch {
	case silent <= degradedAfter:
		return localapi.StateConnected, ""
	case silent <= lostAfter:
		return localapi.StateDegraded, fmt.Sprintf("the gateway has not answered for %s", silent.Round(time.Second))
	case in.FailClosed:
		return localapi.StateBlocked, fmt.Sprintf("the gateway stopped answering %s ago; reconnecting while the kill switch holds", silent.Round(time.Second))
	}
	return localapi.StateConnecting, fmt.Sprintf("the gateway stopped answering %s ago; reconnecting", silent.Round(time.Second))
}

// answerClock turns what the tunnel reports in wall-clock time (the last
// handshake, from wireguard-go) into monotonic readings: it notes when a
// report changed, on the monotonic clock, and never compares a wall-clock
// time with the present. So a clock that jumps (a laptop waking, NTP
// stepping) neither ages the tunnel nor makes it look fresh.
type answerClock struct {
	lastWall time.Time     // the last handshake time seen
	at       time.Duration // when it was first seen
}

// observe records the tunnel's last handshake as seen at monotonic now
// and returns when the gateway last answered, zero if never.
func (c *answerClock) observe(handshake time.Time, now time.Duration) time.Duration {
	if !handshake.IsZero() && !handshake.Equal(c.lastWall) {
		c.lastWall, c.at = handshake, now
	}
	return c.at
}

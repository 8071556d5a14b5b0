package client

import (
	"strings"
	"testing"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
)

func TestConnectionStates(t *testing.T) {
	s := time.Second
	up := inputs{Enrolled: true, WantUp: true, EngineUp: true, EngineSince: 10 * s, LastAnswer: 100 * s, Now: 101 * s}
	with := func(f func(*inputs)) inputs { in := up; f(&in); return in }
	for _, tc := range []struct {
		name   string
		in     inputs
		want   localapi.State
		reason string
	}{
		{"fresh install", inputs{}, localapi.StateNeedsEnrollment, "not enrolled"},
		{"revoked, even while up", with(func(in *inputs) { in.Revoked = "peer 3 revoked at 10:02" }), localapi.StateNeedsEnrollment, "revoked this device"},
		{"enrolled, the employee's down", with(func(in *inputs) { in.WantUp, in.EngineUp = false, false }), localapi.StateDisconnected, "tether up"},
		{"down with the kill switch: nothing leaks", with(func(in *inputs) { in.WantUp, in.EngineUp, in.FailClosed = false, false, true }), localapi.StateBlocked, "nothing leaves"},
		{"up asked, diagnosing first", with(func(in *inputs) { in.EngineUp, in.Diagnosing = false, true }), localapi.StateDiagnosing, "measuring"},
		{"a network change while connected", with(func(in *inputs) { in.NetworkChanged = true }), localapi.StateDiagnosing, "measuring"},
		{"a diagnosis through a working tunnel stays connected", with(func(in *inputs) { in.Diagnosing = true }), localapi.StateConnected, ""},
		{"bringing it up", with(func(in *inputs) { in.EngineUp = false }), localapi.StateConnecting, "bringing"},
		{"bring-up failed", with(func(in *inputs) { in.EngineUp, in.EngineError = false, "no TUN device" }), localapi.StateConnecting, "no TUN device"},
		{"bring-up failed with the kill switch", with(func(in *inputs) { in.EngineUp, in.EngineError, in.FailClosed = false, "no TUN device", true }), localapi.StateBlocked, "kill switch"},
		{"up, first handshake pending", with(func(in *inputs) { in.LastAnswer, in.Now = 0, 14*s }), localapi.StateConnecting, "first answer"},
		{"no handshake in 5 s: says what to do", with(func(in *inputs) { in.LastAnswer, in.Now, in.Endpoint = 0, 16*s, "203.0.113.7:51820" }), localapi.StateConnecting,
			"gateway 203.0.113.7:51820 did not answer the WireGuard handshake within 5 s: UDP may be blocked on this network; `tether diag` checks"},
		{"no handshake in 5 s, fail-closed: not blocked yet", with(func(in *inputs) { in.LastAnswer, in.Now, in.FailClosed = 0, 16*s, true }), localapi.StateConnecting, "within 5 s"},
		{"no handshake for long: UDP blocked?", with(func(in *inputs) { in.LastAnswer, in.Now = 0, 40*s }), localapi.StateConnecting, "UDP may be blocked"},
		{"no handshake for long, fail-closed", with(func(in *inputs) { in.LastAnswer, in.Now, in.FailClosed = 0, 40*s, true }), localapi.StateBlocked, "UDP may be blocked"},
		{"answering", up, localapi.StateConnected, ""},
		{"gateway lost for 5 s: degraded", with(func(in *inputs) { in.Now = 105 * s }), localapi.StateDegraded, "not answered for 5s"},
		{"gateway lost for 20 s: reconnecting", with(func(in *inputs) { in.Now = 120 * s }), localapi.StateConnecting, "stopped answering 20s ago"},
		{"gateway lost, fail-closed: blocked", with(func(in *inputs) { in.Now, in.FailClosed = 120*s, true }), localapi.StateBlocked, "kill switch holds"},
		{"gateway back", with(func(in *inputs) { in.LastAnswer, in.Now = 121*s, 121*s }), localapi.StateConnected, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, why := nextState(tc.in)
			if st != tc.want || !strings.Contains(why, tc.reason) {
				t.Fatalf("nextState = %s (%q), want %s with %q", st, why, tc.want, tc.reason)
			}
		})
	}
}

// TestWallClockJumpsChangeNothing: a laptop that sleeps for an hour
// wakes with the wall clock an hour on, while the monotonic clock (which
// stops in suspend) is not. Wireguard-go's last handshake is a wall time;
// answerClock never compares it with the present, so the tunnel neither
// looks an hour stale (which would force a rebind) nor fresh.
func TestWallClockJumpsChangeNothing(t *testing.T) {
	var c answerClock
	wall := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	s := time.Second
	if got := c.observe(time.Time{}, 5*s); got != 0 {
		t.Fatalf("no handshake yet: %v", got)
	}
	if got := c.observe(wall, 10*s); got != 10*s {
		t.Fatalf("first handshake seen at %v", got)
	}
	// The same handshake, seen later: still answered at 10 s.
	if got := c.observe(wall, 12*s); got != 10*s {
		t.Fatalf("unchanged handshake moved to %v", got)
	}
	in := inputs{Enrolled: true, WantUp: true, EngineUp: true, EngineSince: 5 * s, LastAnswer: c.at, Now: 12 * s}
	before, _ := nextState(in)
	// Wake: the wall clock jumped an hour; wireguard-go's next handshake
	// carries the new wall time. The monotonic clock moved 1 s.
	got := c.observe(wall.Add(time.Hour), 13*s)
	in.LastAnswer, in.Now = got, 13*s
	after, why := nextState(in)
	if before != localapi.StateConnected || after != localapi.StateConnected {
		t.Fatalf("across a wall-clock jump: %s, then %s (%s)", before, after, why)
	}
	// And backwards: a handshake time earlier than the last one seen is
	// still news, not a reason to look stale.
	if got := c.observe(wall.Add(-time.Hour), 14*s); got != 14*s {
		t.Fatalf("a handshake with an earlier wall time: %v", got)
	}
}

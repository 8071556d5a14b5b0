package ui

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/localapi/localapitest"
)

func TestSummarize(t *testing.T) {
	connected := localapi.Status{State: localapi.StateConnected, Mode: "split", Engine: "userspace",
		Gateway:  localapi.GatewayStatus{URL: "https://gw", Name: "hq", Reachable: true},
		Decision: &localapi.Decision{Mode: "split", Reasons: []localapi.Reason{{ID: "full_needs", Text: "the line is 0.9 Mbit/s up"}}}}
	for _, tc := range []struct {
		name string
		st   localapi.Status
		err  error
		want View
	}{
		{"connected", connected, nil, View{Headline: "Connected (split tunnel, userspace engine)", Gateway: "Connected to the company gateway hq", OK: true,
			Detail: "Why this mode: the line is 0.9 Mbit/s up"}},
		{"degraded", localapi.Status{State: localapi.StateDegraded, Mode: "full", Engine: "tun", Reason: "the gateway has not answered for 5s",
			Enrollment: &localapi.EnrollmentStatus{Gateway: "https://gw"}}, nil,
			View{Headline: "Connection unstable (full tunnel, tun engine)", Gateway: "Gateway https://gw", Detail: "The gateway has not answered for 5s."}},
		{"blocked", localapi.Status{State: localapi.StateBlocked, Reason: "nothing leaves this machine"}, nil,
			View{Headline: "Blocked: the kill switch holds", Detail: "Nothing leaves this machine."}},
		{"not enrolled", localapi.Status{State: localapi.StateNeedsEnrollment, Reason: "this device is not enrolled: `tether enroll URL --token T`"}, nil,
			View{Headline: "Not enrolled", Detail: "This device is not enrolled: `tether enroll URL --token T`."}},
		{"starting", localapi.Status{Gateway: localapi.GatewayStatus{URL: "http://gw"}}, nil, View{Headline: "Starting…", Gateway: "Gateway http://gw"}},
		{"daemon not running", localapi.Status{}, fmt.Errorf("x: %w", localapi.ErrNotRunning),
			View{Headline: "Tether is not running", Detail: "The Tether service (tetherd) is not running. Start it, or ask the helpdesk."}},
		{"daemon broken", localapi.Status{}, errors.New("500 boom"), View{Headline: "Tether is not responding", Detail: "500 boom"}},
		{"daemon of another version", localapi.Status{}, &localapi.VersionError{Socket: "/s", Daemon: "2"}, View{Headline: "Tether is not responding",
			Detail: "tetherd at /s speaks local API version 2, this program version 1: install tether and tetherd of the same release"}},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, Summarize(tc.st, tc.err)) })
	}
}

// TestTrayWindowFollowsTheDaemon drives the tray through its real
// backend, a localapi.Client, against a fake daemon on a socket.
func TestTrayWindowFollowsTheDaemon(t *testing.T) {
	app := test.NewTempApp(t)
	d := localapitest.New(t)
	tr := NewTray(app, d.Client())
	shows := func(headline string) {
		t.Helper()
		tr.refresh(context.Background())
		assert.Eventually(t, func() bool { return tr.state.Text == headline }, time.Second, 10*time.Millisecond,
			"the window never showed %q", headline)
	}

	shows("Disconnected")
	d.SetStatus(localapi.Status{State: localapi.StateConnected, Mode: "full", Engine: "tun", Gateway: localapi.GatewayStatus{Name: "hq"}})
	shows("Connected (full tunnel, tun engine)")
	assert.Equal(t, "Tether: Connected (full tunnel, tun engine)", tr.header.Label)
	assert.Equal(t, "Connected to the company gateway hq", tr.gateway.Text)

	d.Fail(&localapi.Error{Status: 500, Code: localapi.CodeInternal, Message: "boom"})
	shows("Tether is not responding")
	assert.Contains(t, tr.detail.Text, "boom")

	d.Close()
	shows("Tether is not running")
	assert.Equal(t, "Tether: Tether is not running", tr.header.Label)
}

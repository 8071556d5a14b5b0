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
	ready := localapi.Status{State: localapi.StateReady, Gateway: localapi.GatewayStatus{URL: "http://gw", Name: "hq", Reachable: true, RTT: localapi.Duration(1234 * time.Microsecond)}}
	down := localapi.Status{State: localapi.StateGatewayUnreachable, Gateway: localapi.GatewayStatus{URL: "http://gw", Error: "connection refused"}}
	for _, tc := range []struct {
		name string
		st   localapi.Status
		err  error
		want View
	}{
		{"ready", ready, nil, View{Headline: "Ready", Gateway: "Company gateway hq answers in 1.23ms", OK: true}},
		{"gateway down", down, nil, View{Headline: "Company gateway unreachable", Gateway: "Gateway http://gw",
			Detail: "Tether cannot reach the company gateway. Check that this computer is online. Details: connection refused"}},
		{"starting", localapi.Status{State: localapi.StateStarting, Gateway: localapi.GatewayStatus{URL: "http://gw"}}, nil,
			View{Headline: "Starting…", Gateway: "Gateway http://gw"}},
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

	shows("Starting…")
	d.SetStatus(localapi.Status{State: localapi.StateReady, Gateway: localapi.GatewayStatus{Name: "hq", RTT: localapi.Duration(time.Millisecond)}})
	shows("Ready")
	assert.Equal(t, "Tether: Ready", tr.header.Label)
	assert.Equal(t, "Company gateway hq answers in 1ms", tr.gateway.Text)

	d.Fail(&localapi.Error{Status: 500, Code: localapi.CodeInternal, Message: "boom"})
	shows("Tether is not responding")
	assert.Contains(t, tr.detail.Text, "boom")

	d.Close()
	shows("Tether is not running")
	assert.Equal(t, "Tether: Tether is not running", tr.header.Label)
}

package ui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"

	"github.com/tetherwfh/tether/client/localapi"
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
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, Summarize(tc.st, tc.err)) })
	}
}

type fakeBackend struct {
	mu  sync.Mutex
	st  localapi.Status
	err error
}

func (f *fakeBackend) Status(context.Context) (localapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.err
}

func TestTrayWindowFollowsTheDaemon(t *testing.T) {
	app := test.NewTempApp(t)
	b := &fakeBackend{err: localapi.ErrNotRunning}
	tr := NewTray(app, b)
	tr.refresh(context.Background())
	assert.Eventually(t, func() bool { return tr.state.Text == "Tether is not running" }, time.Second, 10*time.Millisecond)

	b.mu.Lock()
	b.st, b.err = localapi.Status{State: localapi.StateReady, Gateway: localapi.GatewayStatus{Name: "hq", RTT: localapi.Duration(time.Millisecond)}}, nil
	b.mu.Unlock()
	tr.refresh(context.Background())
	assert.Eventually(t, func() bool { return tr.state.Text == "Ready" }, time.Second, 10*time.Millisecond)
	assert.Equal(t, "Tether: Ready", tr.header.Label)
	assert.Equal(t, "Company gateway hq answers in 1ms", tr.gateway.Text)
}

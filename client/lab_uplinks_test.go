package client

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag/report"
)

// TestLabTwoUplinks: a home on a slow, bloated DSL line (16/1 Mbit/s,
// 300 ms queues) with a phone tethered over USB (30/10 Mbit/s, 30 ms
// queues). `tether diag --uplinks`, through tetherd, measures each bound
// to its interface and names the phone, with both uplinks' figures. Both
// ends run as processes.
func TestLabTwoUplinks(t *testing.T) {
	phone := &netlab.Uplink2{
		Down: netlab.Link{Rate: 30 * netlab.Mbps, Queue: 30 * time.Millisecond},
		Up:   netlab.Link{Rate: 10 * netlab.Mbps, Queue: 30 * time.Millisecond},
	}
	s := startLabStackPhone(t, "dsl_bloated", phone, gwapi.DefaultPolicy(), EngineUserspace)
	l := s.lab
	ctx := context.Background()
	s.up(t, localapi.ModeAuto)

	// By hand, through the daemon.
	cli := filepath.Join(filepath.Dir(s.dArgs[0]), "tether")
	out, err := l.Home.Run(ctx, cli, "diag", "--uplinks", "--socket", s.daemon.Socket)
	require.NoError(t, err, out)
	t.Logf("tether diag --uplinks:\n%s", out)
	assert.Contains(t, out, "phone (usb0)")
	assert.Contains(t, out, "switch to the phone for this call")

	// By itself: someone else fills the DSL line; the monitor confirms
	// the saturation, the daemon compares the uplinks and the hotspot
	// suggestion names the phone with both lines' figures.
	// The monitor first learns the quiet line's baseline (the daemon's
	// measurements pause it).
	require.Eventually(t, func() bool {
		line, err := s.daemon.Line(ctx, 0)
		return err == nil && line.Finding.Kind == "ok"
	}, 90*time.Second, time.Second, "the monitor learns the quiet line")
	events := collectEvents(t, s.daemon)
	time.Sleep(200 * time.Millisecond)
	mark := len(events.snapshot())
	stop, err := l.StartLoadFrom(l.Neighbor, 4, 2)
	require.NoError(t, err)
	defer stop()
	loaded := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Second):
			}
			if line, err := s.daemon.Line(ctx, 0); err == nil {
				t.Logf("%4.0f s: %s (%s, active %q, probes %d)", time.Since(loaded).Seconds(), line.Finding.Text, line.Finding.Kind, line.Active, line.Probes)
			}
		}
	}()
	ev, _ := waitEvent(t, events, mark, 180*time.Second, "the monitor's use_hotspot within 180 s of the neighbor's load",
		func(e localapi.Event) bool {
			return suggestion(localapi.EventSuggestion, report.SuggestionUseHotspot)(e) && e.Suggestion.Evidence != nil
		})
	t.Logf("RESULT %.1f s after the load started: %s", ev.Time.Sub(loaded).Seconds(), ev.Suggestion.Summary)
	require.NotNil(t, ev.Suggestion.Evidence.Uplinks, "the suggestion carries the comparison")
	u := ev.Suggestion.Evidence.Uplinks
	assert.Equal(t, netlab.IfHomePhone, u.Best)
	assert.True(t, u.Switch)
	assert.Contains(t, ev.Suggestion.Summary, "phone ("+netlab.IfHomePhone+"): ")
	assert.Contains(t, ev.Suggestion.Summary, "switch to the phone for this call")
}

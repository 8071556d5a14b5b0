package client

import (
	"testing"

	"github.com/tetherwfh/tether/client/localapi"
)

func TestBusFirstStateThenEventsAndDropsTheSlow(t *testing.T) {
	b := newBus()
	b.publish(localapi.Event{Type: localapi.EventState, State: &localapi.StateEvent{State: localapi.StateDisconnected}})
	fast, stopFast := b.watch()
	defer stopFast()
	slow, stopSlow := b.watch()
	defer stopSlow()
	if ev := <-fast; ev.Type != localapi.EventState || ev.State.State != localapi.StateDisconnected {
		t.Fatalf("a new watcher's first event: %+v", ev)
	}
	// The fast watcher keeps up; the slow one never reads.
	for i := range 3 * watcherBuffer {
		b.publish(localapi.Event{Type: localapi.EventProgress, Progress: &localapi.Progress{Stage: "x"}})
		if ev := <-fast; ev.Type != localapi.EventProgress {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	n := 0
	for range slow { // closed once it fell behind
		n++
	}
	if n != watcherBuffer {
		t.Fatalf("the slow watcher got %d events before being dropped, want its buffer's %d", n, watcherBuffer)
	}
	if b.count() != 1 {
		t.Fatalf("%d watchers, want the fast one", b.count())
	}
	stopSlow() // stopping a dropped watcher is harmless
	stopFast()
	if b.count() != 0 {
		t.Fatal("stop left a watcher")
	}
}

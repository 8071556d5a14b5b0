package client

import (
	"sync"

	"github.com/tetherwfh/tether/client/localapi"
)

// watcherBuffer is how many events a watcher may fall behind before it is
// dropped: a few seconds of a diagnosis's progress. The daemon never
// waits for a watcher.
const watcherBuffer = 64

// bus fans the daemon's events out to the local API's watchers. Publish
// never blocks: a watcher whose buffer is full is dropped (its channel
// closed), and reconnects. A new watcher first gets the current state.
type bus struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	state    localapi.Event // the last state event
}

type watcher struct {
	ch chan localapi.Event
	// dropped is true once the bus closed ch for falling behind.
	dropped bool
}

func newBus() *bus { return &bus{watchers: map[*watcher]struct{}{}} }

// publish sends ev to every watcher, dropping those that cannot take it.
func (b *bus) publish(ev localapi.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ev.Type == localapi.EventState {
		b.state = ev
	}
	for w := range b.watchers {
		select {
		case w.ch <- ev:
		default:
			w.dropped = true
			close(w.ch)
			delete(b.watchers, w)
		}
	}
}

// watch registers a watcher; its channel yields the current state first
// and closes when the watcher is dropped or stop is called.
func (b *bus) watch() (events <-chan localapi.Event, stop func()) {
	w := &watcher{ch: make(chan localapi.Event, watcherBuffer)}
	b.mu.Lock()
	if b.state.Type != "" {
		w.ch <- b.state
	}
	b.watchers[w] = struct{}{}
	b.mu.Unlock()
	return w.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.watchers[w]; ok {
			delete(b.watchers, w)
			close(w.ch)
		}
	}
}

// count is the number of watchers, for tests.
func (b *bus) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.watchers)
}

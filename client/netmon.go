package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"
)

// networkDebounce is how long the network must be quiet after a change
// before the daemon acts on it: joining a Wi-Fi network brings an
// address, routes and DNS within a second or two, and one rediagnosis
// should follow, not five.
const networkDebounce = 1500 * time.Millisecond

// network is the network the default route leaves by.
type network struct {
	// Interface and Router name the default route; empty and invalid when
	// there is none (offline).
	Interface string
	Router    netip.Addr
}

// ID identifies the network without naming it: the default route's
// interface and router, hashed. Empty when offline.
func (n network) ID() string {
	if n.Interface == "" {
		return ""
	}
	h := sha256.Sum256([]byte(n.Interface + "|" + n.Router.String()))
	return hex.EncodeToString(h[:8])
}

// netWatcher reports network changes. Watch sends the network as it is
// after each burst of changes has settled (networkDebounce), until ctx
// ends; the first value is the network now.
type netWatcher interface {
	Watch(ctx context.Context) <-chan network
}

// debounce turns a stream of change pokes into settled readings: after
// each burst, once quiet for wait, it reads the network and sends it if
// it differs from the last sent.
func debounce(ctx context.Context, pokes <-chan struct{}, wait time.Duration, read func() network) <-chan network {
	out := make(chan network, 1)
	go func() {
		defer close(out)
		last := read()
		select {
		case out <- last:
		case <-ctx.Done():
			return
		}
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-pokes:
				if !ok {
					return
				}
				timer = time.After(wait)
			case <-timer:
				timer = nil
				if now := read(); now != last {
					last = now
					select {
					case out <- now:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out
}

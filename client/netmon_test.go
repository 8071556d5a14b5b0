package client

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestDebounceSettlesBursts: a burst of changes is one reading once the
// network is quiet, and a reading equal to the last one is not sent.
func TestDebounceSettlesBursts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cur atomic.Value
	cur.Store(network{Interface: "eth0", Router: netip.MustParseAddr("192.168.1.1")})
	pokes := make(chan struct{}, 1)
	poke := func() {
		select {
		case pokes <- struct{}{}:
		default:
		}
	}
	out := debounce(ctx, pokes, 50*time.Millisecond, func() network { return cur.Load().(network) })
	if n := <-out; n.Interface != "eth0" {
		t.Fatalf("first reading %+v", n)
	}
	// A burst that changes nothing sends nothing.
	for range 5 {
		poke()
	}
	select {
	case n := <-out:
		t.Fatalf("an unchanged network was sent: %+v", n)
	case <-time.After(200 * time.Millisecond):
	}
	// A burst that lands on a new network sends it once.
	cur.Store(network{Interface: "wlan0", Router: netip.MustParseAddr("10.0.0.1")})
	for range 5 {
		poke()
		time.Sleep(5 * time.Millisecond)
	}
	if n := <-out; n.Interface != "wlan0" {
		t.Fatalf("after the burst %+v", n)
	}
	select {
	case n := <-out:
		t.Fatalf("a second reading for one burst: %+v", n)
	case <-time.After(200 * time.Millisecond):
	}
	if (network{}).ID() != "" || cur.Load().(network).ID() == (network{Interface: "eth0"}).ID() {
		t.Fatal("network IDs")
	}
}

package keyrate

import (
	"net/netip"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Unix(1000, 0)} }
func mustKey(s string) netip.Prefix      { return Key(netip.MustParseAddr(s), 0, 0) }
func allowed(l *Limiter, k netip.Prefix) int {
	n := 0
	for l.Allow(k) {
		n++
	}
	return n
}

func TestKeyGroupsIPv6By64(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"192.0.2.1", "192.0.2.2", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true},
		{"fe80::1%eth0", "fe80::1", true},
	} {
		if got := mustKey(tc.a) == mustKey(tc.b); got != tc.same {
			t.Errorf("Key(%s) == Key(%s): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
	if got := Key(netip.MustParseAddr("198.51.100.77"), 24, 0); got != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("Key with 24 bits: %v", got)
	}
}

func TestBurstThenRate(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 2, Burst: 5, Now: c.now})
	k := mustKey("2001:db8::1")
	if n := allowed(l, k); n != 5 {
		t.Fatalf("burst: %d allowed, want 5", n)
	}
	// Another address of the same /64 shares the bucket.
	if l.Allow(mustKey("2001:db8::2")) {
		t.Fatal("a second address of the same /64 got its own bucket")
	}
	if !l.Allow(mustKey("192.0.2.1")) {
		t.Fatal("another client was limited")
	}
	c.add(time.Second)
	if n := allowed(l, k); n != 2 {
		t.Fatalf("after 1 s at 2/s: %d allowed, want 2", n)
	}
}

func TestRotationIsBoundedAndSharesOverflow(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 1, Burst: 1, MaxKeys: 100, Now: c.now})
	base := netip.MustParseAddr("2001:db8::")
	passed := 0
	for i := range 10000 {
		b := base.As16()
		b[6], b[7] = byte(i>>8), byte(i) // a new /64 each time
		if l.Allow(Key(netip.AddrFrom16(b), 0, 0)) {
			passed++
		}
	}
	if l.Len() > 100 {
		t.Fatalf("%d live buckets, want at most 100", l.Len())
	}
	// 100 keys got their own bucket, the rest shared one token.
	if passed != 101 {
		t.Fatalf("%d of 10000 rotating sources passed, want 101", passed)
	}
	// Once they refill, buckets are forgotten and new clients get their own.
	c.add(2 * time.Second)
	if !l.Allow(mustKey("192.0.2.9")) || l.Len() != 1 {
		t.Fatalf("after refilling: %d live buckets, want 1", l.Len())
	}
}

// TestHoldsSpendsNothing: Holds reports what Allow would, and neither
// spends a token nor keeps a bucket.
func TestHoldsSpendsNothing(t *testing.T) {
	c := newClock()
	l := New(Config{Rate: 1, Burst: 2, MaxKeys: 2, Now: c.now})
	k := mustKey("192.0.2.1")
	for range 10 {
		if !l.Holds(k, 1) {
			t.Fatal("a fresh key holds its burst")
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Holds kept %d buckets", l.Len())
	}
	if n := allowed(l, k); n != 2 {
		t.Fatalf("after Holds: %d allowed, want the whole burst of 2", n)
	}
	if l.Holds(k, 1) {
		t.Fatal("an empty bucket holds nothing")
	}
	c.add(time.Second)
	if !l.Holds(k, 1) || l.Holds(k, 2) {
		t.Fatal("after 1 s at 1/s the bucket holds one token")
	}
	// With every bucket taken, a new key shares the overflow bucket.
	allowed(l, mustKey("192.0.2.2"))
	l.overflow = bucket{tokens: 0, last: c.t}
	if l.Holds(mustKey("192.0.2.3"), 1) {
		t.Fatal("a new key past MaxKeys holds what the empty overflow bucket holds")
	}
}

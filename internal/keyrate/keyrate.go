// Package keyrate limits events per client network: a token bucket for
// each key, where a key is a client's address grouped into a prefix
// (IPv6 by /64 by default, since one host can rotate through the
// addresses of its /64 at will).
//
// Memory is bounded: a bucket that has refilled is the same as no bucket
// and is forgotten, and once MaxKeys buckets are live every further key
// shares one overflow bucket, so rotating addresses buys an attacker
// nothing but that shared, quickly emptied bucket.
//
// Boundaries: keyrate imports nothing of the product; the gateway, the
// resolver and the measurement services use it.
package keyrate

import (
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the live buckets of a Limiter: about 100 bytes
// each, so at most a few MB however many sources a flood uses.
const DefaultMaxKeys = 1 << 16

// Default prefix lengths for Key: an IPv4 address is one client, an IPv6
// /64 is one subnet, which SLAAC lets a host fill with addresses.
const (
	DefaultV4Bits = 32
	DefaultV6Bits = 64
)

// Key groups a into the prefix that stands for one client: the /v4Bits
// around an IPv4 address (or IPv4-mapped IPv6), the /v6Bits around an
// IPv6 one. Zero bits mean the defaults. The invalid address has its own
// key, so callers need not special-case it.
func Key(a netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := v4Bits
	if bits <= 0 || bits > 32 {
		bits = DefaultV4Bits
	}
	if a.Is6() {
		bits = v6Bits
		if bits <= 0 || bits > 128 {
			bits = DefaultV6Bits
		}
	}
	p, _ := a.Prefix(bits)
	return p
}

// Config sets a Limiter's rate. The zero value allows nothing.
type Config struct {
	// Rate is the sustained events per second per key.
	Rate float64
	// Burst is how many events a key may spend at once; zero means
	// max(1, Rate).
	Burst float64
	// MaxKeys bounds the live buckets; zero means DefaultMaxKeys.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Limiter is a set of token buckets, one per key. Safe for concurrent use.
type Limiter struct {
	cfg Config

	mu        sync.Mutex
	buckets   map[netip.Prefix]*bucket
	overflow  bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter with cfg's rate.
func New(cfg Config) *Limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, cfg.Rate)
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, buckets: map[netip.Prefix]*bucket{}, overflow: bucket{tokens: cfg.Burst}}
}

// Allow spends one token of key's bucket and reports whether there was one.
func (l *Limiter) Allow(key netip.Prefix) bool { return l.AllowN(key, 1) }

// AllowN spends n tokens of key's bucket if it holds that many.
func (l *Limiter) AllowN(key netip.Prefix, n float64) bool {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > 0 && now.Sub(l.lastSweep) > l.fullAfter() {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.cfg.MaxKeys {
			l.sweep(now)
		}
		if len(l.buckets) >= l.cfg.MaxKeys {
			b = &l.overflow
		} else {
			b = &bucket{tokens: l.cfg.Burst, last: now}
			l.buckets[key] = b
		}
	}
	l.refill(b, now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// Holds reports whether key's bucket holds n tokens, spending none and
// adding no bucket. A caller that charges failures only (wrong
// credentials) asks Holds before it checks, and spends with Allow once a
// check fails, so a client network's successes cost nothing.
func (l *Limiter) Holds(key netip.Prefix, n float64) bool {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.cfg.MaxKeys {
			l.sweep(now)
		}
		if len(l.buckets) < l.cfg.MaxKeys {
			return l.cfg.Burst >= n // a new bucket is full
		}
		b = &l.overflow
	}
	l.refill(b, now)
	return b.tokens >= n
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.cfg.Burst, b.tokens+el.Seconds()*l.cfg.Rate)
	}
	b.last = now
}

// fullAfter is how long an empty bucket takes to refill: after that, a
// bucket is the same as none.
func (l *Limiter) fullAfter() time.Duration {
	if l.cfg.Rate <= 0 {
		return time.Hour
	}
	return max(time.Second, time.Duration(l.cfg.Burst/l.cfg.Rate*float64(time.Second)))
}

// sweep forgets the buckets that have refilled.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.cfg.Burst {
			delete(l.buckets, k)
		}
	}
	l.lastSweep = now
}

// Len is the number of live buckets, for tests and metrics.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

package resolver

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/tetherwfh/tether/internal/keyrate"
)

// RateLimitConfig limits queries per client. A client inside one of
// Options.PeerPrefixes (the tunnel pool) is limited on its own: WireGuard
// binds each peer's address to its key, so a peer can neither share
// another's address nor rotate through the pool. Any other client is
// limited per network, /24 for IPv4 and /56 for IPv6 by default (what one
// household or one customer usually has).
type RateLimitConfig struct {
	// QPS is the sustained rate per client or network; 0 turns limiting off.
	QPS   float64 `yaml:"qps"`
	Burst int     `yaml:"burst"` // default 2*QPS
	// Slip: every Slip-th limited UDP query gets an empty truncated answer
	// instead of silence, so a real client behind a spoofed flood retries
	// over TCP (as in BIND's RRL); 0 means 2, <0 never.
	Slip int `yaml:"slip"`
	// IPv4Prefix groups IPv4 clients outside the peer prefixes by this
	// prefix length; default 24.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	// IPv6Prefix groups IPv6 clients outside the peer prefixes; default
	// 56, at most 64.
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// Defaults and bounds of the client networks. Shorter prefixes than the
// minimums would put whole providers in one bucket; an IPv6 prefix longer
// than /64 would let one host escape its limit by rotating through the
// addresses of its own /64, which SLAAC gives it at will.
const (
	defaultIPv4Prefix = 24
	defaultIPv6Prefix = 56
	minIPv4Prefix     = 16
	maxIPv4Prefix     = 32
	minIPv6Prefix     = 32
	maxIPv6Prefix     = 64
)

// slipSlots is the size of the table of slip counters, one per hash of a
// key: bounded memory (16 KB) under any number of sources. Two keys that
// share a slot only shift each other's slip phase; each still gets about
// one limited query in Slip answered truncated.
const slipSlots = 4096

// defaults fills in zero values and checks the prefix lengths.
func (c *RateLimitConfig) defaults() error {
	if c.Burst == 0 {
		c.Burst = int(2 * c.QPS)
	}
	if c.Slip == 0 {
		c.Slip = 2
	}
	if c.IPv4Prefix == 0 {
		c.IPv4Prefix = defaultIPv4Prefix
	}
	if c.IPv6Prefix == 0 {
		c.IPv6Prefix = defaultIPv6Prefix
	}
	if c.IPv4Prefix < minIPv4Prefix || c.IPv4Prefix > maxIPv4Prefix {
		return fmt.Errorf("rate_limit.ipv4_prefix %d: want %d to %d (the IPv4 network limited as one client; default %d)",
			c.IPv4Prefix, minIPv4Prefix, maxIPv4Prefix, defaultIPv4Prefix)
	}
	if c.IPv6Prefix < minIPv6Prefix || c.IPv6Prefix > maxIPv6Prefix {
		return fmt.Errorf("rate_limit.ipv6_prefix %d: want %d to %d (the IPv6 network limited as one client, default %d; past /64 one host could rotate its addresses to escape)",
			c.IPv6Prefix, minIPv6Prefix, maxIPv6Prefix, defaultIPv6Prefix)
	}
	return nil
}

type limiter struct {
	cfg   RateLimitConfig
	peers []netip.Prefix
	// Peers and other networks have separate buckets, so that however
	// many sources a flood from outside uses, it cannot push a peer into
	// keyrate's shared overflow bucket.
	peerBuckets, netBuckets *keyrate.Limiter

	seed  maphash.Seed
	slips [slipSlots]atomic.Uint32
}

// newLimiter takes a cfg that defaults has filled in.
func newLimiter(cfg RateLimitConfig, peers []netip.Prefix, now clock) *limiter {
	kc := keyrate.Config{Rate: cfg.QPS, Burst: float64(cfg.Burst), Now: now}
	return &limiter{cfg: cfg, peers: peers, peerBuckets: keyrate.New(kc), netBuckets: keyrate.New(kc), seed: maphash.MakeSeed()}
}

func (l *limiter) on() bool { return l.cfg.QPS > 0 }

// key is the bucket client spends from: its own address inside a peer
// prefix, its network outside.
func (l *limiter) key(client netip.Addr) (netip.Prefix, *keyrate.Limiter) {
	client = client.Unmap()
	for _, p := range l.peers {
		if p.Contains(client) {
			return keyrate.Key(client, 32, 128), l.peerBuckets
		}
	}
	return keyrate.Key(client, l.cfg.IPv4Prefix, l.cfg.IPv6Prefix), l.netBuckets
}

// allow takes a token for client. slip reports, for a limited query,
// whether to answer truncated rather than drop.
func (l *limiter) allow(client netip.Addr) (ok, slip bool) {
	key, b := l.key(client)
	if b.Allow(key) {
		return true, false
	}
	if l.cfg.Slip < 0 {
		return false, false
	}
	a := key.Addr().As16()
	h := maphash.Bytes(l.seed, a[:]) ^ uint64(key.Bits())
	n := l.slips[h%slipSlots].Add(1)
	return false, n%uint32(l.cfg.Slip) == 0
}

func (l *limiter) wrap(next Handler) Handler {
	if !l.on() {
		return next
	}
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		ok, slip := l.allow(req.Client)
		if ok {
			return next.Resolve(ctx, req)
		}
		req.Result = "ratelimited"
		if slip && !req.TCP {
			m := reply(req.Msg, dns.RcodeSuccess)
			m.Truncated = true
			return m, nil
		}
		return nil, errDrop
	})
}

// wire: the same bucket and slip as the chain form; a slip is the
// header and question with TC set.
func (l *limiter) wire(q *fastQuery, pkt, buf []byte) ([]byte, wireStep) {
	if !l.on() {
		return nil, wireNext
	}
	ok, slip := l.allow(q.client)
	if ok {
		return nil, wireNext
	}
	q.result = "ratelimited"
	if slip {
		return packTruncated(pkt, q, buf), wireAnswered
	}
	return nil, wireAnswered
}

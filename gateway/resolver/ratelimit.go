package resolver

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// RateLimitConfig limits queries per client network: per /24 for IPv4 and
// per /56 for IPv6 (what one household or one customer usually has).
type RateLimitConfig struct {
	// QPS is the sustained rate per network; 0 turns limiting off.
	QPS   float64 `yaml:"qps"`
	Burst int     `yaml:"burst"` // default 2*QPS
	// Slip: every Slip-th limited UDP query gets an empty truncated answer
	// instead of silence, so a real client behind a spoofed flood retries
	// over TCP (as in BIND's RRL); 0 means 2, <0 never.
	Slip int `yaml:"slip"`
}

type bucket struct {
	tokens  float64
	last    time.Time
	limited int
}

type limiter struct {
	cfg RateLimitConfig
	now clock

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
	sweep   time.Time
}

func newLimiter(cfg RateLimitConfig, now clock) *limiter {
	if cfg.Burst == 0 {
		cfg.Burst = int(2 * cfg.QPS)
	}
	if cfg.Slip == 0 {
		cfg.Slip = 2
	}
	return &limiter{cfg: cfg, now: now, buckets: map[netip.Prefix]*bucket{}}
}

func clientNet(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 56
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow takes a token for client's network. slip reports, for a limited
// query, whether to answer truncated rather than drop.
func (l *limiter) allow(client netip.Addr) (ok, slip bool) {
	now := l.now()
	key := clientNet(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		// Forget idle networks so a scan can't grow the map forever.
		for k, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(l.cfg.Burst), last: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.cfg.Burst), b.tokens+now.Sub(b.last).Seconds()*l.cfg.QPS)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, false
	}
	b.limited++
	return false, l.cfg.Slip > 0 && b.limited%l.cfg.Slip == 0
}

func (l *limiter) on() bool { return l.cfg.QPS > 0 }

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

package resolver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// CacheConfig tunes the cache. Zero values take the defaults.
type CacheConfig struct {
	MaxEntries int           `yaml:"max_entries"` // default 100000
	MinTTL     time.Duration `yaml:"min_ttl"`     // default 0
	MaxTTL     time.Duration `yaml:"max_ttl"`     // default 24h
	// MaxNegativeTTL caps NXDOMAIN/NODATA caching (RFC 2308 section 5
	// suggests 1-3 hours); default 1h.
	MaxNegativeTTL time.Duration `yaml:"max_negative_ttl"`
	// Stale is how long past expiry an answer may be served when every
	// upstream fails (RFC 8767 suggests 1-3 days); default 24h, <0 off.
	Stale time.Duration `yaml:"stale"`
	// PrefetchHits: an entry hit this often is refreshed in the
	// background when less than 10% of its TTL remains; default 3, <0 off.
	PrefetchHits int `yaml:"prefetch_hits"`
}

func (c *CacheConfig) defaults() {
	if c.MaxEntries == 0 {
		c.MaxEntries = 100_000
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = 24 * time.Hour
	}
	if c.MaxNegativeTTL == 0 {
		c.MaxNegativeTTL = time.Hour
	}
	if c.Stale == 0 {
		c.Stale = 24 * time.Hour
	}
	if c.PrefetchHits == 0 {
		c.PrefetchHits = 3
	}
}

// staleTTL is the TTL of a stale answer (RFC 8767 section 4 recommends 30 s).
const staleTTL = 30

type cacheKey struct {
	name  string
	qtype uint16
	do    bool
	cd    bool
}

type cacheEntry struct {
	msg         *dns.Msg // without OPT
	stored      time.Time
	ttl         time.Duration
	hits        atomic.Int32
	prefetching atomic.Bool
}

type cache struct {
	cfg CacheConfig
	now clock

	mu sync.Mutex
	m  map[cacheKey]*cacheEntry

	prefetches atomic.Int64
	wg         sync.WaitGroup
	closed     atomic.Bool
}

func newCache(cfg CacheConfig, now clock) *cache {
	cfg.defaults()
	return &cache{cfg: cfg, now: now, m: map[cacheKey]*cacheEntry{}}
}

func keyOf(req *Request) cacheKey {
	k := cacheKey{name: req.Name, qtype: req.Qtype, cd: req.Msg.CheckingDisabled}
	if opt := req.Msg.IsEdns0(); opt != nil {
		k.do = opt.Do()
	}
	return k
}

func (c *cache) get(k cacheKey) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *cache) wrap(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		k := keyOf(req)
		now := c.now()
		e := c.get(k)
		if e != nil {
			age := now.Sub(e.stored)
			if age < e.ttl {
				hits := e.hits.Add(1)
				if c.cfg.PrefetchHits > 0 && int(hits) >= c.cfg.PrefetchHits && e.ttl-age < e.ttl/10 {
					c.prefetch(k, req, next, e)
				}
				req.Result = "cached"
				return answerFrom(e.msg, req, age, false), nil
			}
		}
		resp, err := next.Resolve(ctx, req)
		if (err != nil || resp == nil || resp.Rcode == dns.RcodeServerFailure) && e != nil && c.cfg.Stale > 0 {
			if now.Sub(e.stored) < e.ttl+c.cfg.Stale {
				req.Result = "stale"
				return answerFrom(e.msg, req, 0, true), nil
			}
		}
		if err != nil {
			return nil, err
		}
		c.store(k, resp, now)
		return resp, nil
	})
}

// prefetch refreshes a popular entry in the background, once at a time.
func (c *cache) prefetch(k cacheKey, req *Request, next Handler, e *cacheEntry) {
	if c.closed.Load() || !e.prefetching.CompareAndSwap(false, true) {
		return
	}
	c.prefetches.Add(1)
	q := req.Msg.Copy()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := &Request{Msg: q, Client: req.Client, Name: req.Name, Qtype: req.Qtype}
		if resp, err := next.Resolve(ctx, r); err == nil {
			c.store(k, resp, c.now())
		} else {
			e.prefetching.Store(false)
		}
	}()
}

// store caches resp when it is cacheable: positive answers for their
// smallest TTL, negative ones (NXDOMAIN, NODATA) for the SOA's
// min(TTL, MINIMUM) per RFC 2308, clamped either way. Truncated and
// failed answers are never stored.
func (c *cache) store(k cacheKey, resp *dns.Msg, now time.Time) {
	if resp.Truncated || (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
		return
	}
	var ttl uint32
	negative := resp.Rcode == dns.RcodeNameError || len(resp.Answer) == 0
	if negative {
		found := false
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl, found = min(soa.Hdr.Ttl, soa.Minttl), true
			}
		}
		if !found {
			return
		}
	} else {
		ttl = ^uint32(0)
		for _, rr := range resp.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	d := time.Duration(ttl) * time.Second
	d = max(d, c.cfg.MinTTL)
	d = min(d, c.cfg.MaxTTL)
	if negative {
		d = min(d, c.cfg.MaxNegativeTTL)
	}
	if d <= 0 {
		return
	}
	m := resp.Copy()
	m.Extra = stripOPT(m.Extra)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.m[k]; !exists && len(c.m) >= c.cfg.MaxEntries {
		c.evictLocked(now)
	}
	c.m[k] = &cacheEntry{msg: m, stored: now, ttl: d}
}

// evictLocked drops one entry: a long-dead one if the first few it looks
// at include one, else any (Go's map order is random, which makes this
// random eviction: no bookkeeping per hit).
func (c *cache) evictLocked(now time.Time) {
	var victim cacheKey
	n := 0
	for k, e := range c.m {
		victim = k
		if now.Sub(e.stored) > e.ttl+c.cfg.Stale || n >= 8 {
			break
		}
		n++
	}
	delete(c.m, victim)
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *cache) close() {
	c.closed.Store(true)
	c.wg.Wait()
}

func stripOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// answerFrom builds a response to req from a cached message, with TTLs
// reduced by age, or set to staleTTL for a stale answer (which also
// carries EDE 3, Stale Answer, for EDNS clients).
func answerFrom(cached *dns.Msg, req *Request, age time.Duration, stale bool) *dns.Msg {
	m := cached.Copy()
	m.Id = req.Msg.Id
	m.Question = req.Msg.Question
	m.Response = true
	m.RecursionDesired = req.Msg.RecursionDesired
	dec := uint32(age / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			switch {
			case stale:
				h.Ttl = staleTTL
			case h.Ttl > dec:
				h.Ttl -= dec
			default:
				h.Ttl = 0
			}
		}
	}
	if opt := req.Msg.IsEdns0(); opt != nil {
		o := m.SetEdns0(ednsSize, opt.Do()).IsEdns0()
		if stale {
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeStaleAnswer, ExtraText: "upstreams failed; serving a stale answer"})
		}
	}
	return m
}

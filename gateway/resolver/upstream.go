package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the EDNS0 UDP payload size we advertise, upstream and to
// clients: DNS Flag Day 2020's 1232 bytes, which avoids IP fragmentation.
const ednsSize = 1232

// UpstreamConfig is one upstream resolver.
type UpstreamConfig struct {
	// Addr is host:port, or an address (port 53, or 853 for tls).
	Addr string `yaml:"addr"`
	// Proto is udp (with TCP on truncation, the default), tcp, or tls
	// (DNS-over-TLS, RFC 7858).
	Proto string `yaml:"proto"`
	// ServerName verifies a tls upstream's certificate; default: the
	// host part of Addr.
	ServerName string `yaml:"server_name"`
	// CAFile is a PEM bundle that verifies a tls upstream instead of the
	// system roots (a private resolver with its own CA).
	CAFile string `yaml:"ca_file"`
}

// Strategy picks upstreams.
type Strategy string

const (
	// StrategyFirst: the first healthy upstream in order.
	StrategyFirst Strategy = "first"
	// StrategyParallelBest: race the two best upstreams (by recent
	// errors and latency) and take the first good answer, as Blocky's
	// parallel_best does.
	StrategyParallelBest Strategy = "parallel_best"
)

// upstreamTimeout bounds one exchange.
const upstreamTimeout = 2 * time.Second

type upstream struct {
	cfg       UpstreamConfig
	addr      string
	tlsConfig *tls.Config

	errors  atomic.Int64 // decays: halved on each success
	latency atomic.Int64 // EWMA in microseconds
	lastErr atomic.Int64 // unix nanos of the last failure
}

// upstreams is the last link: it forwards to the configured resolvers.
type upstreams struct {
	list     []*upstream
	strategy Strategy
	now      clock
	// dial is for tests that need to observe the socket; nil: net.Dialer.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newUpstreams(cfgs []UpstreamConfig, strategy Strategy, now clock) (*upstreams, error) {
	if strategy == "" {
		strategy = StrategyParallelBest
	}
	if strategy != StrategyFirst && strategy != StrategyParallelBest {
		return nil, fmt.Errorf("upstream strategy %q: want first or parallel_best", strategy)
	}
	u := &upstreams{strategy: strategy, now: now}
	for i, c := range cfgs {
		if c.Proto == "" {
			c.Proto = "udp"
		}
		port := "53"
		switch c.Proto {
		case "udp", "tcp":
		case "tls":
			port = "853"
		default:
			return nil, fmt.Errorf("upstream %d: proto %q: want udp, tcp or tls", i+1, c.Proto)
		}
		addr := c.Addr
		if ap, err := netip.ParseAddr(addr); err == nil {
			addr = net.JoinHostPort(ap.String(), port)
		} else if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("upstream %d: %q is neither an address nor host:port", i+1, c.Addr)
		}
		up := &upstream{cfg: c, addr: addr}
		if c.Proto == "tls" {
			sn := c.ServerName
			if sn == "" {
				sn, _, _ = net.SplitHostPort(addr)
			}
			up.tlsConfig = &tls.Config{ServerName: sn, MinVersion: tls.VersionTLS12}
			if c.CAFile != "" {
				pem, err := os.ReadFile(c.CAFile)
				if err != nil {
					return nil, fmt.Errorf("upstream %d: ca_file: %w", i+1, err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("upstream %d: ca_file %s holds no PEM certificate", i+1, c.CAFile)
				}
				up.tlsConfig.RootCAs = pool
			}
		}
		u.list = append(u.list, up)
	}
	return u, nil
}

// wrap makes the upstreams the chain's last link: they answer or fail,
// and never pass a query on.
func (u *upstreams) wrap(Handler) Handler { return u }

// Resolve forwards the query. Errors mean no upstream gave a usable
// answer; the edge turns them into SERVFAIL.
func (u *upstreams) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) {
	if len(u.list) == 0 {
		req.Result = "refused"
		return reply(req.Msg, dns.RcodeRefused), nil
	}
	var resp *dns.Msg
	var err error
	if u.strategy == StrategyParallelBest && len(u.list) > 1 {
		resp, err = u.race(ctx, req)
	} else {
		resp, err = u.first(ctx, req)
	}
	if err != nil {
		req.Result = "failed"
		return nil, err
	}
	req.Result = "forwarded"
	return resp, nil
}

func (u *upstreams) first(ctx context.Context, req *Request) (*dns.Msg, error) {
	var errs []error
	// Healthy ones first, in configured order; recently failed ones last.
	order := make([]*upstream, 0, len(u.list))
	var sick []*upstream
	for _, up := range u.list {
		if time.Since(time.Unix(0, up.lastErr.Load())) < 30*time.Second && up.errors.Load() > 2 {
			sick = append(sick, up)
		} else {
			order = append(order, up)
		}
	}
	for _, up := range append(order, sick...) {
		resp, err := u.exchange(ctx, up, req.Msg)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// race asks the two best upstreams at once. "Best" picks by fewest recent
// errors, then lowest latency, with a random choice among the rest so a
// recovered upstream gets traffic again.
func (u *upstreams) race(ctx context.Context, req *Request) (*dns.Msg, error) {
	a, b := u.pickTwo()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		m   *dns.Msg
		err error
	}
	ch := make(chan res, 2)
	for _, up := range []*upstream{a, b} {
		go func() {
			m, err := u.exchange(ctx, up, req.Msg)
			ch <- res{m, err}
		}()
	}
	var errs []error
	for range 2 {
		r := <-ch
		if r.err == nil {
			return r.m, nil
		}
		errs = append(errs, r.err)
	}
	return nil, errors.Join(errs...)
}

func (u *upstreams) pickTwo() (*upstream, *upstream) {
	score := func(up *upstream) int64 { return up.errors.Load()*1_000_000 + up.latency.Load() }
	best := u.list[0]
	for _, up := range u.list[1:] {
		if score(up) < score(best) {
			best = up
		}
	}
	for {
		other := u.list[rand.IntN(len(u.list))]
		if other != best {
			return best, other
		}
	}
}

// exchange sends q to one upstream with upstream hygiene: a fresh random
// ID and a fresh socket (so a random source port) per query, EDNS0 at
// 1232 bytes, answers checked for ID and question, and TCP when a UDP
// answer comes back truncated.
func (u *upstreams) exchange(ctx context.Context, up *upstream, q *dns.Msg) (*dns.Msg, error) {
	out := q.Copy()
	out.Id = uint16(rand.Uint32())
	out.RecursionDesired = true
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	out.Extra = stripOPT(out.Extra)
	out.SetEdns0(ednsSize, do)
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	start := time.Now()
	network := up.cfg.Proto
	resp, err := u.exchangeOnce(ctx, up, network, out)
	if err == nil && resp.Truncated && network == "udp" {
		resp, err = u.exchangeOnce(ctx, up, "tcp", out)
	}
	if err == nil && resp.Rcode == dns.RcodeServerFailure {
		err = fmt.Errorf("upstream %s: SERVFAIL", up.addr)
	}
	if err != nil {
		up.errors.Add(1)
		up.lastErr.Store(time.Now().UnixNano())
		return nil, err
	}
	up.errors.Store(up.errors.Load() / 2)
	us := time.Since(start).Microseconds()
	old := up.latency.Load()
	if old == 0 {
		up.latency.Store(us)
	} else {
		up.latency.Store((old*7 + us) / 8)
	}
	resp.Id = q.Id
	return resp, nil
}

func (u *upstreams) exchangeOnce(ctx context.Context, up *upstream, network string, out *dns.Msg) (*dns.Msg, error) {
	dialNet := network
	if network == "tls" {
		dialNet = "tcp"
	}
	var conn net.Conn
	var err error
	if u.dial != nil {
		conn, err = u.dial(ctx, dialNet, up.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, dialNet, up.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up.addr, err)
	}
	if network == "tls" {
		tc := tls.Client(conn, up.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("upstream %s: TLS: %w", up.addr, err)
		}
		conn = tc
	}
	dc := &dns.Conn{Conn: conn, UDPSize: ednsSize}
	defer dc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if err := dc.WriteMsg(out); err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up.addr, err)
	}
	for {
		resp, err := dc.ReadMsg()
		if err != nil {
			// A malformed packet is as good as a spoof: keep waiting
			// on UDP, where anyone can send one; fail on streams.
			if network == "udp" && ctx.Err() == nil && !isTimeout(err) && !errors.Is(err, net.ErrClosed) {
				continue
			}
			return nil, fmt.Errorf("upstream %s: %w", up.addr, err)
		}
		if resp.Id != out.Id || !sameQuestion(resp, out) || !resp.Response {
			// A forged or stale answer: ignore it and keep waiting for
			// the real one (on UDP; on a stream it means a broken server).
			if network == "udp" {
				continue
			}
			return nil, fmt.Errorf("upstream %s: answer does not match the query", up.addr)
		}
		return resp, nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func sameQuestion(a, b *dns.Msg) bool {
	if len(a.Question) != 1 || len(b.Question) != 1 {
		return false
	}
	qa, qb := a.Question[0], b.Question[0]
	return qa.Qtype == qb.Qtype && qa.Qclass == qb.Qclass && strings.EqualFold(qa.Name, qb.Name)
}

// healthy is for readiness: some upstream answered recently or none has
// failed.
func (u *upstreams) healthy() bool {
	for _, up := range u.list {
		if up.errors.Load() < 3 {
			return true
		}
	}
	return len(u.list) == 0
}

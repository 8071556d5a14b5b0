package netdiag

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/tetherwfh/tether/netdiag/report"
)

// interceptCandidates are where the interception check may send its DNS
// queries, per family in order of preference: addresses from the ranges
// reserved for documentation, which no network routes, so no DNS server
// answers from them. A home router or ISP box that redirects every
// port-53 packet to its own resolver (DNAT) answers anyway, and its
// reply comes back from the address asked, which the answer-source check
// cannot see.
//   - IPv4: TEST-NET-1, -2 and -3 (RFC 5737).
//   - IPv6: 2001:db8::/32 (RFC 3849) and 3fff::/20 (RFC 9637); without
//     IPv6 the query cannot be sent, which the probe reports.
//
// Some networks use a documentation range as their own LAN (sandboxes
// and labs do), and may run a DNS server there: pickInterceptProbes
// passes over a candidate on this host's own networks.
var interceptCandidates = [][]netip.Addr{
	{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")},
	{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("3fff::1")},
}

// pickInterceptProbes takes, per family, the first candidate outside the
// host's own prefixes that is not the router, on port 53.
func pickInterceptProbes(candidates [][]netip.Addr, local []netip.Prefix, router netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, family := range candidates {
		for _, a := range family {
			if a == router || slices.ContainsFunc(local, func(p netip.Prefix) bool { return p.Contains(a) }) {
				continue
			}
			out = append(out, netip.AddrPortFrom(a, 53))
			break
		}
	}
	return out
}

// Interception check timing. On a normal line nothing answers, so every
// probe runs to interceptWait; it runs beside the DNS checks, which take
// as long (dnsQueryTimeout), so it adds nothing to a run. Three queries
// interceptGap apart let one lost packet not hide an interceptor.
const (
	interceptWait  = dnsQueryTimeout
	interceptGap   = 250 * time.Millisecond
	interceptTries = 3
)

// interception queries every probe address concurrently.
func (d *dnsChecker) interception(ctx context.Context) *report.InterceptReport {
	rep := &report.InterceptReport{Probes: make([]report.InterceptProbe, len(d.intercept))}
	var wg sync.WaitGroup
	for i, ap := range d.intercept {
		wg.Add(1)
		go func() { defer wg.Done(); rep.Probes[i] = d.interceptProbe(ctx, ap) }()
	}
	wg.Wait()
	for _, p := range rep.Probes {
		rep.Intercepted = rep.Intercepted || p.Answered
	}
	return rep
}

// interceptProbe sends up to interceptTries queries for ProbeName to ap
// on one connected socket and waits for an answer to any of them, with
// the same ID and question, until interceptWait has passed.
func (d *dnsChecker) interceptProbe(ctx context.Context, ap netip.AddrPort) report.InterceptProbe {
	p := report.InterceptProbe{Addr: ap.String()}
	ctx, cancel := context.WithTimeout(ctx, interceptWait)
	defer cancel()
	c, err := d.dial(ctx, "udp", ap.String())
	if err != nil {
		p.Error = err.Error()
		return p
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	m := query(d.cfg.ProbeName, dns.TypeA, true)
	wire, err := m.Pack()
	if err != nil {
		p.Error = err.Error()
		return p
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	defer func() { cancel(); wg.Wait() }()
	go func() {
		defer wg.Done()
		for i := range interceptTries {
			if i > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(interceptGap):
				}
			}
			if _, err := c.Write(wire); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if !isTimeout(err) && !errors.Is(err, context.DeadlineExceeded) {
				p.Error = err.Error() // an ICMP error: the network answered, not a DNS server
			}
			return p
		}
		var resp dns.Msg
		if resp.Unpack(buf[:n]) != nil || resp.Id != m.Id || !resp.Response || len(resp.Question) != 1 ||
			!equalName(resp.Question[0].Name, d.cfg.ProbeName) {
			continue
		}
		p.Answered, p.RTTMS, p.Answer = true, ms(time.Since(start)), describeAnswer(&resp)
		return p
	}
}

func equalName(a, b string) bool { return dns.CanonicalName(a) == dns.CanonicalName(b) }

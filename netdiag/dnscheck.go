package netdiag

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/tetherwfh/tether/netdiag/report"
)

// DNS check parameters.
const (
	// dnsQueryTimeout bounds one query. Resolvers answer from cache in
	// milliseconds and recurse in well under a second; a second is what
	// the C library's resolver waits before its first retry (RES_TIMEOUT
	// is 5 s in glibc, but browsers give up far sooner).
	dnsQueryTimeout = time.Second
	// dnsLatencyQueries is how many queries measure a resolver's latency
	// in a full run; quick runs use dnsQuickQueries.
	dnsLatencyQueries = 10
	dnsQuickQueries   = 4
	// dnsSpacing spaces the latency queries, so they measure the
	// resolver and not a burst.
	dnsSpacing = 50 * time.Millisecond
	// ednsSize is the EDNS0 buffer size the DNS Flag Day 2020 settled on:
	// it fits the IPv6 minimum MTU without fragmentation.
	ednsSize = 1232
	// defaultDNSProbeName answers everywhere and is cached everywhere.
	defaultDNSProbeName = "example.com."
	// defaultDNSTestDomain: IANA's reserved domain is fully delegated, so
	// a random label under it must get NXDOMAIN from any honest resolver.
	defaultDNSTestDomain = "example.com."
)

// DNSConfig configures the DNS health checks. The zero value checks the
// system's resolvers with public names.
type DNSConfig struct {
	// Off turns the DNS checks off.
	Off bool
	// Resolvers are the system's resolvers; nil means read them from the
	// OS (ResolvConf, and systemd-resolved's list behind its stub).
	Resolvers []netip.AddrPort
	// ResolvConf is the file to read; empty means /etc/resolv.conf.
	ResolvConf string
	// Company is the company's filtering resolver; the zero value means
	// none is known (the daemon passes the gateway's, inside the tunnel).
	Company netip.AddrPort
	// ProbeName is queried to measure latency; empty means example.com.
	ProbeName string
	// TestDomain: a random label under it must get NXDOMAIN; anything
	// else is NXDOMAIN rewriting. Empty means example.com.
	TestDomain string
	// BlockedCanary is a name the company resolver must block; empty
	// skips the filter checks.
	BlockedCanary string
	// ExpectFiltered says the company filter should cover the system's
	// lookups: the tunnel is up and sets the DNS. Then a system resolver
	// that resolves the canary is a bypass (dns_filter_bypassed). Off the
	// tunnel, the home resolver not filtering is normal, and reported
	// without a verdict.
	ExpectFiltered bool
	// ConsistencyName is resolved by every resolver and the answers
	// compared with the company's; empty means ProbeName.
	ConsistencyName string
	// LargeName has an answer larger than 1232 bytes, for the truncation
	// check; empty skips it (unknown).
	LargeName string
	// SignedName is a DNSSEC-signed name, for the AD-bit check; empty
	// skips it (unknown).
	SignedName string
	// InterceptProbes are addresses where no DNS server can be, queried
	// to find a transparent interceptor (see dnsintercept.go); nil means
	// one per family from the documentation ranges, passing over any on
	// this host's own networks, and an empty, non-nil slice skips the
	// check. It runs only when system resolvers are checked, and never
	// through Config.Dial.
	InterceptProbes []netip.AddrPort
}

func (d DNSConfig) withDefaults() DNSConfig {
	if d.ProbeName == "" {
		d.ProbeName = defaultDNSProbeName
	}
	if d.TestDomain == "" {
		d.TestDomain = defaultDNSTestDomain
	}
	if d.ConsistencyName == "" {
		d.ConsistencyName = d.ProbeName
	}
	for _, p := range []*string{&d.ProbeName, &d.TestDomain, &d.BlockedCanary, &d.ConsistencyName, &d.LargeName, &d.SignedName} {
		if *p != "" {
			*p = dns.Fqdn(*p)
		}
	}
	return d
}

// dnsChecker runs the checks against one or more resolvers.
type dnsChecker struct {
	cfg     DNSConfig
	queries int
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	// listen opens an unconnected UDP socket for the answer-source check;
	// nil skips it (a caller's network may not offer one).
	listen func() (net.PacketConn, error)
	// intercept are the interception check's probes; empty skips it.
	intercept []netip.AddrPort
}

// run checks every resolver concurrently and assembles the report.
func (d *dnsChecker) run(ctx context.Context, system []systemResolver) *report.DNSReport {
	rep := &report.DNSReport{}
	type job struct {
		addr   netip.AddrPort
		role   string
		source string
	}
	var jobs []job
	for _, s := range system {
		jobs = append(jobs, job{s.addr, "system", s.source})
	}
	if d.cfg.Company.IsValid() {
		jobs = append(jobs, job{d.cfg.Company, "company", "config"})
	}
	rep.Resolvers = make([]report.ResolverReport, len(jobs))
	canary := make([]canaryAnswer, len(jobs))
	consistent := make([][]string, len(jobs))
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	if len(d.intercept) > 0 && len(system) > 0 {
		run(func() { rep.Interception = d.interception(ctx) })
	}
	for i, j := range jobs {
		run(func() {
			rep.Resolvers[i] = d.check(ctx, j.addr)
			rep.Resolvers[i].Role, rep.Resolvers[i].Source = j.role, j.source
		})
		// The filter and consistency checks compare with the company's
		// resolver; without one there is nothing to compare.
		if !d.cfg.Company.IsValid() {
			continue
		}
		if d.cfg.BlockedCanary != "" {
			run(func() { canary[i] = d.canary(ctx, j.addr) })
		}
		run(func() { consistent[i], _ = d.addresses(ctx, j.addr, d.cfg.ConsistencyName) })
	}
	wg.Wait()
	if !d.cfg.Company.IsValid() {
		return rep
	}
	ci := len(jobs) - 1
	if d.cfg.BlockedCanary != "" {
		rep.Filter = filterReport(d.cfg, canary[ci], rep.Resolvers[ci].Resolves)
		for i := range ci {
			if canary[i].resolved() {
				rep.Filter.BypassedBy = append(rep.Filter.BypassedBy, rep.Resolvers[i].Addr)
			}
		}
	}
	cr := &report.ConsistencyReport{Name: strings.TrimSuffix(d.cfg.ConsistencyName, "."), Company: consistent[ci]}
	for i := range ci {
		if consistent[i] != nil && consistent[ci] != nil && !slices.Equal(consistent[i], consistent[ci]) {
			cr.Differs = append(cr.Differs, report.ResolverAnswers{Resolver: rep.Resolvers[i].Addr, Answers: consistent[i]})
		}
	}
	rep.Consistency = cr
	return rep
}

func yes(b bool) *bool { return &b }

// check runs the per-resolver checks, concurrently.
func (d *dnsChecker) check(ctx context.Context, server netip.AddrPort) report.ResolverReport {
	r := report.ResolverReport{Addr: server.String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	set := func(f func()) { mu.Lock(); f(); mu.Unlock() }
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }

	// What ProbeName's answers, over either transport, said.
	var probe struct {
		answered, resolved bool
		last               string // the last answer without an address
	}
	noteProbe := func(resp *dns.Msg) {
		probe.answered = true
		if len(addrsOf(resp)) > 0 {
			probe.resolved = true
		} else {
			probe.last = describeAnswer(resp) + " for " + strings.TrimSuffix(d.cfg.ProbeName, ".")
		}
	}
	run(func() { // latency, UDP, EDNS and NSID, from the same queries
		var rtts []time.Duration
		var edns, nsidSeen bool
		var nsid string
		var lastErr error
		var mu2 sync.Mutex
		var qwg sync.WaitGroup
		for i := range d.queries {
			if i > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(dnsSpacing):
				}
			}
			if ctx.Err() != nil {
				break
			}
			qwg.Add(1)
			go func() {
				defer qwg.Done()
				m := query(d.cfg.ProbeName, dns.TypeA, true)
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
				resp, rtt, err := d.exchange(ctx, "udp", server, m)
				mu2.Lock()
				defer mu2.Unlock()
				if err != nil {
					lastErr = err
					return
				}
				rtts = append(rtts, rtt)
				set(func() { noteProbe(resp) })
				if opt := resp.IsEdns0(); opt != nil && resp.Rcode != dns.RcodeFormatError {
					edns = true
					for _, o := range opt.Option {
						if n, ok := o.(*dns.EDNS0_NSID); ok && n.Nsid != "" {
							nsidSeen, nsid = true, decodeNSID(n.Nsid)
						}
					}
				}
			}()
		}
		qwg.Wait()
		sent := d.queries
		set(func() {
			r.LatencyStats = Summarize(rtts, sent)
			r.UDP = yes(len(rtts) > 0)
			if len(rtts) > 0 {
				r.EDNS = yes(edns)
			} else if lastErr != nil {
				r.Error = "UDP: " + lastErr.Error()
			}
			if nsidSeen {
				r.NSID = nsid
			}
		})
	})
	run(func() {
		resp, _, err := d.exchange(ctx, "tcp", server, query(d.cfg.ProbeName, dns.TypeA, false))
		set(func() {
			r.TCP = yes(err == nil)
			if err == nil {
				noteProbe(resp)
			}
		})
	})
	run(func() {
		name := randomLabel() + "." + d.cfg.TestDomain
		resp, _, err := d.exchange(ctx, "udp", server, query(name, dns.TypeA, true))
		set(func() {
			if err != nil {
				r.NXDOMAIN = "failed"
				return
			}
			r.NXDOMAIN, r.RewrittenTo = classifyNX(resp)
		})
	})
	if d.cfg.LargeName != "" {
		run(func() {
			t := d.truncation(ctx, server)
			set(func() { r.Truncation = t })
		})
	}
	if d.cfg.SignedName != "" {
		run(func() {
			m := query(d.cfg.SignedName, dns.TypeA, true)
			m.AuthenticatedData = true
			m.IsEdns0().SetDo()
			resp, _, err := d.exchange(ctx, "udp", server, m)
			if err == nil && resp.Rcode == dns.RcodeSuccess {
				set(func() { r.AD = yes(resp.AuthenticatedData) })
			}
		})
	}
	if d.listen != nil {
		run(func() {
			from := d.answerSource(ctx, server)
			if from.IsValid() && from != server.Addr() {
				set(func() { r.AnswerFrom = from.String() })
			}
		})
	}
	wg.Wait()
	if probe.answered {
		r.Resolves = yes(probe.resolved)
		if !probe.resolved {
			r.ProbeAnswer = probe.last
		}
	}
	return r
}

// truncation asks for LargeName over UDP with a 1232-byte buffer, which
// must come back truncated, then over TCP, which must deliver it whole.
func (d *dnsChecker) truncation(ctx context.Context, server netip.AddrPort) string {
	resp, _, err := d.exchange(ctx, "udp", server, query(d.cfg.LargeName, dns.TypeTXT, true))
	if err != nil {
		return ""
	}
	if !resp.Truncated {
		return "fits"
	}
	full, _, err := d.exchange(ctx, "tcp", server, query(d.cfg.LargeName, dns.TypeTXT, true))
	if err != nil || full.Truncated || len(full.Answer) == 0 {
		return "tcp_failed"
	}
	return "ok"
}

// canary asks server for the blocked canary and reads the answer; the
// zero canaryAnswer (unknown) when there was none.
func (d *dnsChecker) canary(ctx context.Context, server netip.AddrPort) canaryAnswer {
	resp, _, err := d.exchange(ctx, "udp", server, query(d.cfg.BlockedCanary, dns.TypeA, true))
	if err != nil {
		return canaryAnswer{text: err.Error()}
	}
	return classifyCanary(resp, d.cfg.BlockedCanary)
}

// classifyNX reads the answer to a name that cannot exist.
func classifyNX(resp *dns.Msg) (string, []string) {
	switch {
	case resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused:
		return "failed", nil
	case resp.Rcode == dns.RcodeNameError:
		return "ok", nil
	case len(addrsOf(resp)) > 0:
		return "rewritten", addrsOf(resp)
	}
	return "ok", nil // NODATA: odd, but not a rewrite
}

// addresses resolves name's A records, sorted; nil when unanswered.
func (d *dnsChecker) addresses(ctx context.Context, server netip.AddrPort, name string) ([]string, error) {
	resp, _, err := d.exchange(ctx, "udp", server, query(name, dns.TypeA, true))
	if err != nil {
		return nil, err
	}
	a := addrsOf(resp)
	if a == nil {
		a = []string{}
	}
	return a, nil
}

// answerSource sends one query from an unconnected socket and reports
// where the answer came from.
func (d *dnsChecker) answerSource(ctx context.Context, server netip.AddrPort) netip.Addr {
	pc, err := d.listen()
	if err != nil {
		return netip.Addr{}
	}
	defer pc.Close()
	m := query(d.cfg.ProbeName, dns.TypeA, false)
	b, err := m.Pack()
	if err != nil {
		return netip.Addr{}
	}
	dl := time.Now().Add(dnsQueryTimeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	_ = pc.SetDeadline(dl)
	if _, err := pc.WriteTo(b, net.UDPAddrFromAddrPort(server)); err != nil {
		return netip.Addr{}
	}
	buf := make([]byte, 4096)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return netip.Addr{}
		}
		var resp dns.Msg
		if resp.Unpack(buf[:n]) != nil || resp.Id != m.Id {
			continue
		}
		if ua, ok := from.(*net.UDPAddr); ok {
			return ua.AddrPort().Addr().Unmap()
		}
		return netip.Addr{}
	}
}

// exchange sends m over network to server and waits for the answer with
// m's ID, within dnsQueryTimeout.
func (d *dnsChecker) exchange(ctx context.Context, network string, server netip.AddrPort, m *dns.Msg) (*dns.Msg, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsQueryTimeout)
	defer cancel()
	c, err := d.dial(ctx, network, server.String())
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// A packet conn is read as UDP, anything else as TCP with its length
	// prefix: miekg/dns decides by the type.
	co := &dns.Conn{Conn: c, UDPSize: dns.MaxMsgSize}
	if network == "tcp" {
		co.Conn = streamOnly{c}
	}
	start := time.Now()
	if err := co.WriteMsg(m); err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", network, server, err)
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				return nil, 0, fmt.Errorf("%s %s: no answer within %v", network, server, dnsQueryTimeout)
			}
			return nil, 0, fmt.Errorf("%s %s: %w", network, server, err)
		}
		if resp.Id == m.Id {
			return resp, time.Since(start), nil
		}
	}
}

// streamOnly hides a conn's PacketConn methods (a netstack TCP conn may
// have them), so miekg/dns frames it as TCP.
type streamOnly struct{ net.Conn }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// query builds a recursive query, with EDNS0 (1232 bytes) when edns.
func query(name string, t uint16, edns bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.RecursionDesired = true
	if edns {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

// addrsOf lists the A and AAAA answers, sorted.
func addrsOf(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	sort.Strings(out)
	return out
}

// randomLabel is a label no zone has: 16 random hex digits with a prefix
// that names us in resolver logs.
func randomLabel() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "tether-nx-" + hex.EncodeToString(b[:])
}

// decodeNSID shows an NSID as text when it is printable, else as hex
// (miekg/dns gives it as hex).
func decodeNSID(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return h
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return h
		}
	}
	return string(b)
}

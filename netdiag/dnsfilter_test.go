package netdiag

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/resolver"
	"github.com/tetherwfh/tether/netdiag/report"
)

// The names of the filter tests: a canary a company list blocks, which
// exists upstream, and a control that must resolve.
const (
	testCanary  = "login.phishing.test."
	testControl = "web.test."
)

// serveDNS runs h on an ephemeral loopback port, UDP and TCP, until the
// test ends, and returns once both servers have started.
func serveDNS(tb testing.TB, h dns.Handler) netip.AddrPort {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	require.NoError(tb, err)
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		tb.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// zone is an authoritative server for test.: the canary and the control
// exist, anything else is NXDOMAIN with the zone's SOA.
func zone() dns.HandlerFunc {
	soa, _ := dns.NewRR("test. 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60")
	rrs := map[string]string{testCanary: testCanary + " 60 IN A 198.18.0.66", testControl: testControl + " 60 IN A 198.18.0.80"}
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 {
			if text, ok := rrs[strings.ToLower(r.Question[0].Name)]; ok && r.Question[0].Qtype == dns.TypeA {
				rr, _ := dns.NewRR(text)
				m.Answer = []dns.RR{rr}
			} else if !ok {
				m.Rcode = dns.RcodeNameError
			}
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{soa}
		}
		if o := r.IsEdns0(); o != nil {
			m.SetEdns0(o.UDPSize(), false)
		}
		_ = w.WriteMsg(m)
	}
}

// tetherResolver runs the gateway's filtering resolver over upstream with
// one list, which may name a file that does not exist (a list that failed
// to load).
func tetherResolver(tb testing.TB, upstream netip.AddrPort, list string, mode resolver.BlockMode) netip.AddrPort {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	r, err := resolver.New(ctx, resolver.Config{
		Upstreams: []resolver.UpstreamConfig{{Addr: upstream.String()}},
		Lists:     []resolver.ListConfig{{Name: "phishing", Category: "phishing", Format: "domains", Path: list}},
		BlockMode: mode,
	}, resolver.Options{})
	require.NoError(tb, err)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	require.NoError(tb, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(ctx, pc, ln) }()
	tb.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// forwarding answers the canary with rcode and no SOA (as Quad9 answers
// what it blocks), or everything so when all, and passes the rest to
// upstream.
func forwarding(upstream netip.AddrPort, rcode int, all bool) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		if all || (len(r.Question) == 1 && strings.EqualFold(r.Question[0].Name, testCanary)) {
			m := new(dns.Msg).SetRcode(r, rcode)
			m.RecursionAvailable = true
			_ = w.WriteMsg(m)
			return
		}
		resp, err := dns.Exchange(r, upstream.String())
		if err != nil {
			_ = w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure))
			return
		}
		_ = w.WriteMsg(resp)
	}
}

// TestCompanyFilterAgainstRealResolvers checks the company resolver, a
// real one on loopback, and judges the report: only an answer that says
// it is a block counts, a filter that lets the canary through is
// critical, and a resolver that refuses is broken, not filtering.
func TestCompanyFilterAgainstRealResolvers(t *testing.T) {
	upstream := serveDNS(t, zone())
	list := filepath.Join(t.TempDir(), "phishing.list")
	require.NoError(t, os.WriteFile(list, []byte("phishing.test\n"), 0o600))
	missing := filepath.Join(t.TempDir(), "not-downloaded.list")
	for _, tc := range []struct {
		name    string
		company netip.AddrPort
		blocks  *bool
		marker  string
		want    []report.VerdictID // exactly these verdicts
		answer  string             // in the filter report
	}{
		{"Tether's resolver blocks (NXDOMAIN, EDE, its own SOA)", tetherResolver(t, upstream, list, resolver.BlockNXDomain), ptr(true), markerEDE, nil, "EDE 15"},
		{"Tether's resolver blocks (0.0.0.0, EDE)", tetherResolver(t, upstream, list, resolver.BlockZeroIP), ptr(true), markerEDE, nil, "NOERROR 0.0.0.0"},
		{"a list that failed to load blocks nothing", tetherResolver(t, upstream, missing, resolver.BlockNXDomain), ptr(false), "", []report.VerdictID{report.VerdictDNSFilterOff}, "198.18.0.66"},
		{"a third-party filter's NXDOMAIN without SOA", serveDNS(t, forwarding(upstream, dns.RcodeNameError, false)), ptr(true), markerNoSOA, nil, "NXDOMAIN"},
		{"a resolver that refuses every name", serveDNS(t, forwarding(upstream, dns.RcodeRefused, true)), nil, "", []report.VerdictID{report.VerdictDNSCompanyBroken}, "REFUSED"},
		{"a resolver that answers every name NXDOMAIN", serveDNS(t, forwarding(upstream, dns.RcodeNameError, true)), nil, markerNoSOA, []report.VerdictID{report.VerdictDNSCompanyBroken}, "NXDOMAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &dnsChecker{cfg: DNSConfig{Company: tc.company, ProbeName: testControl, TestDomain: "test.", BlockedCanary: testCanary}.withDefaults(),
				queries: 2, dial: (&Prober{}).dial}
			rep := healthy()
			rep.DNS = d.run(context.Background(), nil)
			f := rep.DNS.Filter
			require.NotNil(t, f)
			assert.Equal(t, tc.blocks, f.CompanyBlocks, "company_blocks; answer %q", f.CompanyAnswer)
			assert.Equal(t, tc.marker, f.BlockMarker)
			assert.Contains(t, f.CompanyAnswer, tc.answer)
			assert.Equal(t, strings.TrimSuffix(testControl, "."), f.Control)
			vs, _ := judge(rep, false)
			assert.ElementsMatch(t, tc.want, ids(vs))
			for _, v := range vs {
				switch v.ID {
				case report.VerdictDNSFilterOff:
					assert.Contains(t, v.Evidence, strings.TrimSuffix(testCanary, "."), "the canary is the evidence")
					assert.Contains(t, v.Evidence, f.CompanyAnswer, "and the answer")
					assert.Equal(t, report.SeverityCritical, v.Severity)
				case report.VerdictDNSCompanyBroken:
					assert.Contains(t, v.Evidence, tc.company.String())
					assert.Contains(t, v.Evidence, tc.answer)
				}
			}
		})
	}
}

func TestClassifyCanary(t *testing.T) {
	msg := func(rcode int, answer, ns string, ede uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(testCanary, dns.TypeA)
		m.Response, m.Rcode = true, rcode
		if answer != "" {
			rr, err := dns.NewRR(answer)
			require.NoError(t, err)
			m.Answer = []dns.RR{rr}
		}
		if ns != "" {
			rr, err := dns.NewRR(ns)
			require.NoError(t, err)
			m.Ns = []dns.RR{rr}
		}
		if ede != 0 {
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: ede, ExtraText: "blocked\x1b[2J"})
		}
		return m
	}
	const (
		zoneSOA = "test. 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60"
		ownSOA  = testCanary + " 300 IN SOA filter.tether.invalid. hostmaster.tether.invalid. 1 3600 600 86400 300"
	)
	for _, tc := range []struct {
		name    string
		m       *dns.Msg
		blocked *bool
		marker  string
	}{
		{"EDE 15 Blocked", msg(dns.RcodeNameError, "", ownSOA, dns.ExtendedErrorCodeBlocked), ptr(true), markerEDE},
		{"EDE 16 Censored", msg(dns.RcodeSuccess, "", "", dns.ExtendedErrorCodeCensored), ptr(true), markerEDE},
		{"EDE 17 Filtered with REFUSED (CoreDNS acl)", msg(dns.RcodeRefused, "", "", dns.ExtendedErrorCodeFiltered), ptr(true), markerEDE},
		{"NXDOMAIN with the name's own SOA", msg(dns.RcodeNameError, "", ownSOA, 0), ptr(true), markerSynthesizedSOA},
		{"NXDOMAIN without SOA (Quad9)", msg(dns.RcodeNameError, "", "", 0), ptr(true), markerNoSOA},
		{"0.0.0.0", msg(dns.RcodeSuccess, testCanary+" 60 IN A 0.0.0.0", "", 0), ptr(true), markerUnspecified},
		{"an ordinary NXDOMAIN from the zone", msg(dns.RcodeNameError, "", zoneSOA, 0), ptr(false), ""},
		{"an address", msg(dns.RcodeSuccess, testCanary+" 60 IN A 198.18.0.66", "", 0), ptr(false), ""},
		{"NODATA", msg(dns.RcodeSuccess, "", zoneSOA, 0), ptr(false), ""},
		{"a bare REFUSED", msg(dns.RcodeRefused, "", "", 0), nil, ""},
		{"another EDE with REFUSED", msg(dns.RcodeRefused, "", "", dns.ExtendedErrorCodeProhibited), nil, ""},
		{"SERVFAIL", msg(dns.RcodeServerFailure, "", "", 0), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := classifyCanary(tc.m, testCanary)
			assert.Equal(t, tc.blocked, a.blocked)
			assert.Equal(t, tc.marker, a.marker)
			assert.NotContains(t, a.text, "\x1b", "a resolver's text never reaches a terminal raw")
		})
	}
}

// TestInterceptionProbe: an answer from the probed address is
// interception; a port where nothing listens is the normal silence.
func TestInterceptionProbe(t *testing.T) {
	answering := serveDNS(t, zone())
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	silent := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	require.NoError(t, pc.Close())

	d := &dnsChecker{cfg: DNSConfig{ProbeName: testControl}.withDefaults(), queries: 1, dial: (&Prober{}).dial}
	d.intercept = []netip.AddrPort{silent}
	ir := d.interception(context.Background())
	require.Len(t, ir.Probes, 1)
	assert.False(t, ir.Intercepted)
	assert.False(t, ir.Probes[0].Answered)

	d.intercept = []netip.AddrPort{silent, answering}
	ir = d.interception(context.Background())
	assert.True(t, ir.Intercepted)
	assert.True(t, ir.Probes[1].Answered)
	assert.Contains(t, ir.Probes[1].Answer, "198.18.0.80")

	// The check rides a run that checks system resolvers, and its verdict
	// follows.
	rep := healthy()
	rep.DNS = d.run(context.Background(), []systemResolver{{answering, "config"}})
	require.NotNil(t, rep.DNS.Interception)
	vs, _ := judge(rep, false)
	assert.Subset(t, ids(vs), []report.VerdictID{report.VerdictDNSIntercepted, report.VerdictUntrustedNetwork})
}

// TestInterceptProbesAvoidTheHostsOwnNetworks: a network that uses a
// documentation range itself (this test's sandbox does: 192.0.2.0/24)
// may have a DNS server there, so the check asks the next range.
func TestInterceptProbesAvoidTheHostsOwnNetworks(t *testing.T) {
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	for _, tc := range []struct {
		name   string
		local  []netip.Prefix
		router netip.Addr
		want   []netip.AddrPort
	}{
		{"an ordinary home", []netip.Prefix{netip.MustParsePrefix("192.168.1.20/24"), netip.MustParsePrefix("fe80::1/64")}, netip.MustParseAddr("192.168.1.1"),
			[]netip.AddrPort{ap("192.0.2.1:53"), ap("[2001:db8::1]:53")}},
		{"a LAN on TEST-NET-1", []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24")}, netip.MustParseAddr("192.0.2.1"),
			[]netip.AddrPort{ap("198.51.100.1:53"), ap("[2001:db8::1]:53")}},
		{"a router on TEST-NET-2 beyond a LAN on TEST-NET-1", []netip.Prefix{netip.MustParsePrefix("192.0.2.2/24"), netip.MustParsePrefix("2001:db8::2/64")},
			netip.MustParseAddr("198.51.100.1"), []netip.AddrPort{ap("203.0.113.1:53"), ap("[3fff::1]:53")}},
		{"every candidate local", []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, netip.Addr{}, []netip.AddrPort{ap("[2001:db8::1]:53")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, pickInterceptProbes(interceptCandidates, tc.local, tc.router))
		})
	}
}

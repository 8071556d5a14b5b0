package resolver

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fastTestResolver(t testing.TB, mode BlockMode) *Resolver {
	t.Helper()
	r, err := New(context.Background(), Config{
		BlockMode:  mode,
		Lists:      []ListConfig{{Name: "phish", Category: "phishing", Format: "domains", Path: writeList(t, "phishing.test\n*.ads.test\n")}},
		LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"intranet IN A 10.77.0.10", "intranet IN A 10.77.0.11", "intranet IN AAAA fd00::10", "wiki IN CNAME intranet", "txt IN TXT \"hello world\""}}},
	}, Options{})
	require.NoError(t, err)
	return r
}

// same compares the fast path's answer with the chain's for one packet.
// It returns false when the fast path declined the query.
func same(t testing.TB, r *Resolver, pkt []byte) bool {
	t.Helper()
	var fq fastQuery
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
	fast, _, handled := r.fastAnswer(pkt, addr, &fq, nil)
	if !handled {
		return false
	}
	q := new(dns.Msg)
	if err := q.Unpack(pkt); err != nil {
		t.Fatalf("the fast path answered a packet miekg can't unpack: %v", err)
	}
	w := &fakeWriter{}
	r.ServeDNS(w, q)
	require.NotNil(t, w.out, "the chain answered nothing")
	fm := new(dns.Msg)
	require.NoError(t, fm.Unpack(fast), "fast answer unpacks")
	if fm.String() != w.out.String() {
		t.Fatalf("fast and slow paths differ for %s\nfast:\n%s\nslow:\n%s", q.Question[0].String(), fm, w.out)
	}
	return true
}

func TestFastPathMatchesChain(t *testing.T) {
	for _, mode := range []BlockMode{BlockNXDomain, BlockZeroIP} {
		r := fastTestResolver(t, mode)
		handled := 0
		for _, name := range []string{"phishing.test.", "Login.PHISHING.test.", "x.ads.test.", "intranet.corp.test.", "INTRANET.Corp.Test.", "txt.corp.test."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX} {
				for _, edns := range []int{0, 1, 2} {
					q := new(dns.Msg)
					q.SetQuestion(name, qt)
					q.Id = 4242
					q.CheckingDisabled = qt == dns.TypeMX
					q.RecursionDesired = qt != dns.TypeTXT
					if edns > 0 {
						q.SetEdns0(uint16(512*edns), edns == 2)
					}
					pkt, err := q.Pack()
					require.NoError(t, err)
					if same(t, r, pkt) {
						handled++
					}
				}
			}
		}
		t.Logf("%s: the fast path answered %d of %d queries, identically to the chain", mode, handled, 6*4*3)
		assert.Greater(t, handled, 30)
	}
}

func TestFastPathDeclines(t *testing.T) {
	r := fastTestResolver(t, BlockNXDomain)
	var fq fastQuery
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
	mk := func(f func(*dns.Msg)) []byte {
		q := new(dns.Msg)
		q.SetQuestion("phishing.test.", dns.TypeA)
		f(q)
		b, err := q.Pack()
		require.NoError(t, err)
		return b
	}
	for name, pkt := range map[string][]byte{
		"an upstream name":     mk(func(q *dns.Msg) { q.Question[0].Name = "example.com." }),
		"a CNAME in the zone":  mk(func(q *dns.Msg) { q.Question[0].Name = "wiki.corp.test." }),
		"a missing local name": mk(func(q *dns.Msg) { q.Question[0].Name = "nope.corp.test." }),
		"ANY":                  mk(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeANY }),
		"class CH":             mk(func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS }),
		"a response":           mk(func(q *dns.Msg) { q.Response = true }),
		"NOTIFY":               mk(func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify }),
		"an EDNS option": mk(func(q *dns.Msg) {
			q.SetEdns0(1232, false)
			q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}),
		"EDNS version 1":   mk(func(q *dns.Msg) { q.SetEdns0(1232, false); q.IsEdns0().SetVersion(1) }),
		"trailing garbage": append(mk(func(*dns.Msg) {}), 0, 0),
		"a short packet":   mk(func(*dns.Msg) {})[:14],
	} {
		_, _, handled := r.fastAnswer(pkt, addr, &fq, nil)
		assert.False(t, handled, name)
	}
}

// FuzzFastPath: for any packet the fast path answers, the chain gives the
// same answer.
func FuzzFastPath(f *testing.F) {
	for _, name := range []string{"phishing.test.", "intranet.corp.test.", "a.b.ads.test."} {
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		b, _ := q.Pack()
		f.Add(b)
		q.SetEdns0(4096, true)
		b, _ = q.Pack()
		f.Add(b)
	}
	r := fastTestResolver(f, BlockNXDomain)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		same(t, r, pkt)
	})
}

// TestFastPathOverTheWire serves on a real UDP socket (the fast path) and
// checks answers and that the slow path still works beside it.
func TestFastPathOverTheWire(t *testing.T) {
	up := startUpstream(t, answerA)
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: up.addr}},
		Lists:      []ListConfig{{Name: "phish", Category: "phishing", Format: "domains", Path: writeList(t, "phishing.test\n")}},
		LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"intranet IN A 10.77.0.10"}}}})
	c := &dns.Client{Timeout: 2 * time.Second}
	for range 50 {
		for _, tc := range []struct {
			name  string
			rcode int
		}{{"phishing.test.", dns.RcodeNameError}, {"intranet.corp.test.", dns.RcodeSuccess}, {"up.example.", dns.RcodeSuccess}} {
			q := new(dns.Msg)
			q.SetQuestion(tc.name, dns.TypeA)
			q.SetEdns0(1232, false)
			resp, _, err := c.Exchange(q, tr.addr)
			require.NoError(t, err)
			assert.Equal(t, tc.rcode, resp.Rcode)
		}
	}
	assert.EqualValues(t, 1, up.queries.Load(), "the upstream name was cached after the first")
}

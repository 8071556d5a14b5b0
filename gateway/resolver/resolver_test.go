package resolver

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// upstreamServer is a real DNS server on an ephemeral loopback port.
type upstreamServer struct {
	addr    string
	queries atomic.Int64
	down    atomic.Bool
	handler func(w dns.ResponseWriter, q *dns.Msg)
}

func startUpstream(t testing.TB, h func(w dns.ResponseWriter, q *dns.Msg)) *upstreamServer {
	t.Helper()
	u := &upstreamServer{handler: h}
	pc, ln := listenPair(t)
	u.addr = pc.LocalAddr().String()
	wrapped := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		u.queries.Add(1)
		if u.down.Load() {
			return
		}
		u.handler(w, q)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: wrapped}, {Listener: ln, Handler: wrapped}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return u
}

// listenPair opens UDP and TCP on the same free loopback port.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	pc, ln, err := Listen(context.Background(), "127.0.0.1:0")
	require.NoError(t, err)
	return pc, ln
}

// answerA answers every A query with 192.0.2.1 (TTL 60), and NXDOMAIN
// with a SOA (TTL 3600, minimum 30) for names starting "nx".
func answerA(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	name := q.Question[0].Name
	if strings.HasPrefix(name, "nx") {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 3600},
			Ns: "ns.example.", Mbox: "h.example.", Minttl: 30}}
	} else if q.Question[0].Qtype == dns.TypeA {
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	}
	_ = w.WriteMsg(m)
}

type testResolver struct {
	*Resolver
	addr  string
	clock *fakeClock
}

func newTestResolver(t testing.TB, cfg Config) *testResolver {
	t.Helper()
	return newTestResolverWith(t, cfg, Options{})
}

// newTestResolverWith serves cfg on a loopback port with opts and a
// frozen clock of the test's own.
func newTestResolverWith(t testing.TB, cfg Config, opts Options) *testResolver {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	r, err := New(context.Background(), cfg, opts)
	require.NoError(t, err)
	pc, ln := listenPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, pc, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testResolver{Resolver: r, addr: pc.LocalAddr().String(), clock: clk}
}

func (tr *testResolver) ask(t testing.TB, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	if edns {
		q.SetEdns0(1232, false)
	}
	c := &dns.Client{Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(q, tr.addr)
	require.NoError(t, err)
	return resp
}

func writeList(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list.txt")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func ede(m *dns.Msg) *dns.EDNS0_EDE {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e
			}
		}
	}
	return nil
}

func TestBlockedAnswerShapes(t *testing.T) {
	up := startUpstream(t, answerA)
	list := writeList(t, "phishing.test\n*.ads.test\n")
	for _, mode := range []BlockMode{BlockNXDomain, BlockZeroIP} {
		t.Run(string(mode), func(t *testing.T) {
			tr := newTestResolver(t, Config{BlockMode: mode, Upstreams: []UpstreamConfig{{Addr: up.addr}},
				Lists: []ListConfig{{Name: "phish", Category: "phishing", Format: "domains", Path: list}}})
			for _, name := range []string{"phishing.test", "login.PHISHING.test", "x.ads.test"} {
				resp := tr.ask(t, name, dns.TypeA, true)
				if mode == BlockNXDomain {
					assert.Equal(t, dns.RcodeNameError, resp.Rcode, name)
					assert.Empty(t, resp.Answer)
				} else {
					assert.Equal(t, dns.RcodeSuccess, resp.Rcode)
					require.Len(t, resp.Answer, 1)
					assert.Equal(t, "0.0.0.0", resp.Answer[0].(*dns.A).A.String())
				}
				e := ede(resp)
				require.NotNil(t, e, "%s carries an EDE", name)
				assert.Equal(t, dns.ExtendedErrorCodeBlocked, e.InfoCode)
				assert.Contains(t, e.ExtraText, "phishing")
				assert.Contains(t, e.ExtraText, "list phish")
				if mode == BlockNXDomain {
					require.Len(t, resp.Ns, 1)
					soa := resp.Ns[0].(*dns.SOA)
					assert.EqualValues(t, blockTTL, soa.Minttl)
				}
			}
			if mode == BlockZeroIP {
				resp := tr.ask(t, "phishing.test", dns.TypeAAAA, true)
				require.Len(t, resp.Answer, 1)
				assert.Equal(t, "::", resp.Answer[0].(*dns.AAAA).AAAA.String())
				resp = tr.ask(t, "phishing.test", dns.TypeTXT, true)
				assert.Empty(t, resp.Answer)
				require.Len(t, resp.Ns, 1, "NODATA carries the SOA")
			}
			// The parent of a wildcard rule is not blocked; no EDNS, no OPT.
			resp := tr.ask(t, "ads.test", dns.TypeA, false)
			assert.Equal(t, dns.RcodeSuccess, resp.Rcode)
			assert.Nil(t, resp.IsEdns0())
			assert.EqualValues(t, 0, up.queries.Load()-1, "only ads.test reached the upstream")
			up.queries.Store(0)
		})
	}
}

func TestEDE17AndCategories(t *testing.T) {
	up := startUpstream(t, answerA)
	tr := newTestResolver(t, Config{EDE: 17, BlockCategories: []string{"malware"}, Upstreams: []UpstreamConfig{{Addr: up.addr}},
		Lists: []ListConfig{
			{Name: "mal", Category: "malware", Format: "domains", Path: writeList(t, "bad.test\n")},
			{Name: "ads", Category: "ads", Format: "domains", Path: writeList(t, "ad.test\n")},
		}})
	resp := tr.ask(t, "bad.test", dns.TypeA, true)
	assert.Equal(t, dns.RcodeNameError, resp.Rcode)
	assert.Equal(t, uint16(17), ede(resp).InfoCode)
	resp = tr.ask(t, "ad.test", dns.TypeA, true)
	assert.Equal(t, dns.RcodeSuccess, resp.Rcode, "ads are not a blocked category")
	ex, err := tr.Explain("ad.test")
	require.NoError(t, err)
	assert.True(t, ex.CategoryOff)
	assert.Contains(t, ex.Summary, "category ads is not blocked")
}

func TestLocalZone(t *testing.T) {
	tr := newTestResolver(t, Config{LocalZones: []LocalZone{{Name: "corp.test", Records: []string{
		"intranet 300 IN A 10.77.0.10", "wiki.corp.test. IN CNAME intranet.corp.test.", "a.b IN TXT \"deep\""}}}})
	resp := tr.ask(t, "INTRANET.corp.test", dns.TypeA, true)
	require.Len(t, resp.Answer, 1)
	assert.True(t, resp.Authoritative)
	assert.Equal(t, "10.77.0.10", resp.Answer[0].(*dns.A).A.String())
	resp = tr.ask(t, "missing.corp.test", dns.TypeA, true)
	assert.Equal(t, dns.RcodeNameError, resp.Rcode)
	require.Len(t, resp.Ns, 1)
	resp = tr.ask(t, "b.corp.test", dns.TypeA, true)
	assert.Equal(t, dns.RcodeSuccess, resp.Rcode, "an empty non-terminal exists")
	resp = tr.ask(t, "wiki.corp.test", dns.TypeA, true)
	require.Len(t, resp.Answer, 1)
	assert.Equal(t, dns.TypeCNAME, resp.Answer[0].Header().Rrtype)
	// No upstreams: other names are refused, not forwarded anywhere.
	resp = tr.ask(t, "example.com", dns.TypeA, true)
	assert.Equal(t, dns.RcodeRefused, resp.Rcode)
}

func TestCacheTTLNegativeAndStale(t *testing.T) {
	up := startUpstream(t, answerA)
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: up.addr}}, Cache: CacheConfig{MinTTL: 20 * time.Second, PrefetchHits: -1}})
	resp := tr.ask(t, "www.example", dns.TypeA, true)
	require.Len(t, resp.Answer, 1)
	assert.EqualValues(t, 60, resp.Answer[0].Header().Ttl)
	tr.clock.Add(25 * time.Second)
	resp = tr.ask(t, "www.example", dns.TypeA, true)
	assert.EqualValues(t, 35, resp.Answer[0].Header().Ttl, "TTL counts down")
	assert.EqualValues(t, 1, up.queries.Load(), "answered from the cache")
	tr.clock.Add(40 * time.Second)
	tr.ask(t, "www.example", dns.TypeA, true)
	assert.EqualValues(t, 2, up.queries.Load(), "expired: asked again")

	// Negative caching: min(SOA TTL 3600, MINIMUM 30) = 30 s.
	resp = tr.ask(t, "nxname.example", dns.TypeA, true)
	assert.Equal(t, dns.RcodeNameError, resp.Rcode)
	tr.clock.Add(29 * time.Second)
	tr.ask(t, "nxname.example", dns.TypeA, true)
	assert.EqualValues(t, 3, up.queries.Load())
	tr.clock.Add(2 * time.Second)
	tr.ask(t, "nxname.example", dns.TypeA, true)
	assert.EqualValues(t, 4, up.queries.Load())

	// Serve stale (RFC 8767) when the upstream stops answering.
	up.down.Store(true)
	tr.clock.Add(10 * time.Minute)
	resp = tr.ask(t, "www.example", dns.TypeA, true)
	require.Len(t, resp.Answer, 1)
	assert.EqualValues(t, staleTTL, resp.Answer[0].Header().Ttl)
	assert.Equal(t, dns.ExtendedErrorCodeStaleAnswer, ede(resp).InfoCode)
	// Never seen: SERVFAIL with a network-error EDE.
	resp = tr.ask(t, "never.example", dns.TypeA, true)
	assert.Equal(t, dns.RcodeServerFailure, resp.Rcode)
	assert.Equal(t, dns.ExtendedErrorCodeNetworkError, ede(resp).InfoCode)
}

func TestCacheMaxTTLAndPrefetch(t *testing.T) {
	up := startUpstream(t, answerA)
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: up.addr}}, Cache: CacheConfig{MaxTTL: 10 * time.Second, PrefetchHits: 2}})
	resp := tr.ask(t, "p.example", dns.TypeA, true)
	assert.EqualValues(t, 60, resp.Answer[0].Header().Ttl, "the first answer passes through as is")
	tr.clock.Add(9500 * time.Millisecond) // less than 10% of the clamped 10 s left
	tr.ask(t, "p.example", dns.TypeA, true)
	tr.ask(t, "p.example", dns.TypeA, true)
	first := tr.clock.Now().Add(-9500 * time.Millisecond)
	key := cacheKey{name: "p.example.", qtype: dns.TypeA}
	require.Eventually(t, func() bool {
		e := tr.cache.get(key)
		return e != nil && e.stored.After(first)
	}, 5*time.Second, 10*time.Millisecond, "a popular entry is prefetched and stored")
	assert.EqualValues(t, 2, up.queries.Load())
	tr.clock.Add(5 * time.Second) // past the old expiry: the prefetched copy serves
	tr.ask(t, "p.example", dns.TypeA, true)
	assert.EqualValues(t, 2, up.queries.Load())
}

func TestTCPFallbackOnTruncation(t *testing.T) {
	var udp, tcp atomic.Int64
	up := startUpstream(t, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if w.RemoteAddr().Network() == "udp" {
			udp.Add(1)
			m.Truncated = true
		} else {
			tcp.Add(1)
			for i := range 40 {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{strings.Repeat("x", 100) + string(rune('a'+i%26))}})
			}
		}
		_ = w.WriteMsg(m)
	})
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: up.addr}}})
	resp := tr.ask(t, "big.example", dns.TypeTXT, false)
	assert.EqualValues(t, 1, udp.Load())
	assert.EqualValues(t, 1, tcp.Load(), "retried over TCP")
	assert.True(t, resp.Truncated, "a client without EDNS gets at most 512 bytes, with TC")
	resp.Compress = true
	packed, _ := resp.Pack()
	assert.LessOrEqual(t, len(packed), 512)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("big.example.", dns.TypeTXT)
	full, _, err := c.Exchange(q, tr.addr)
	require.NoError(t, err)
	assert.Len(t, full.Answer, 40, "over TCP the whole answer")
}

// TestSpoofedAnswersAreIgnored: a fake upstream sends answers with a wrong
// ID and a wrong question before the real one. Only the real one is used,
// and when only forgeries come, nothing is cached.
func TestSpoofedAnswersAreIgnored(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	var honest atomic.Bool
	honest.Store(true)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			send := func(m *dns.Msg) { b, _ := m.Pack(); _, _ = pc.WriteTo(b, from) }
			forged := new(dns.Msg)
			forged.SetReply(q)
			forged.Id = q.Id + 1
			forged.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IPv4(6, 6, 6, 6)}}
			send(forged)
			wrongQ := forged.Copy()
			wrongQ.Id = q.Id
			wrongQ.Question[0].Name = "evil.example."
			send(wrongQ)
			if honest.Load() {
				m := new(dns.Msg)
				m.SetReply(q)
				m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
				send(m)
			}
		}
	}()
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: pc.LocalAddr().String()}}, Cache: CacheConfig{Stale: -1}})
	resp := tr.ask(t, "bank.example", dns.TypeA, true)
	require.Len(t, resp.Answer, 1)
	assert.Equal(t, "192.0.2.1", resp.Answer[0].(*dns.A).A.String())
	honest.Store(false)
	resp = tr.ask(t, "other.example", dns.TypeA, true)
	assert.Equal(t, dns.RcodeServerFailure, resp.Rcode, "only forgeries: no answer")
	assert.Zero(t, tr.cache.get(cacheKey{name: "other.example.", qtype: dns.TypeA, do: false}), "and nothing cached")
}

func TestRefusesANYAndRateLimits(t *testing.T) {
	up := startUpstream(t, answerA)
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: up.addr}}, RateLimit: RateLimitConfig{QPS: 1, Burst: 4, Slip: 2}})
	resp := tr.ask(t, "example.com", dns.TypeANY, true)
	assert.Equal(t, dns.RcodeRefused, resp.Rcode)
	// The clock is frozen: the ANY, a, b and the first c spend the burst
	// of 4 (the limiter comes first, so a refused query costs a token too).
	tr.ask(t, "a.example", dns.TypeA, true)
	tr.ask(t, "b.example", dns.TypeA, true)
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("c.example.", dns.TypeA)
	var answered, dropped, slipped int
	for range 5 {
		r, _, err := c.Exchange(q, tr.addr)
		switch {
		case err != nil:
			dropped++
		case r.Truncated:
			slipped++
		default:
			answered++
		}
	}
	assert.Equal(t, 1, answered)
	assert.Equal(t, 2, dropped, "limited queries are dropped...")
	assert.Equal(t, 2, slipped, "...except every 2nd, answered truncated")
	tr.clock.Add(2 * time.Second)
	resp = tr.ask(t, "d.example", dns.TypeA, true)
	assert.Equal(t, dns.RcodeSuccess, resp.Rcode, "tokens refill")
}

// TestMalformedPacketsOverTheWire sends broken packets to the UDP port,
// on the fast path and with it off; each gets FORMERR, NOTIMP, BADVERS or
// nothing, no packet makes the chain panic (issue 13 case 4: a 12-byte
// header claiming a question panicked in validate and logged a stack
// per packet), and the server keeps answering.
func TestMalformedPacketsOverTheWire(t *testing.T) {
	valid := new(dns.Msg)
	valid.SetQuestion("a.corp.test.", dns.TypeA)
	vb, err := valid.Pack()
	require.NoError(t, err)
	pack := func(f func(m *dns.Msg)) []byte {
		m := valid.Copy()
		f(m)
		b, err := m.Pack()
		require.NoError(t, err)
		return b
	}
	twob := pack(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) })
	zerob := pack(func(m *dns.Msg) { m.Question = nil })
	qrb := pack(func(m *dns.Msg) { m.Response = true })
	updb := pack(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate })
	// A compression pointer that points at itself.
	loop := append([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, 0xc0, 12, 0, 1, 0, 1)
	// Headers whose counts claim records the packet lacks: miekg's accept
	// rules pass them (they read the header), and unpacking them yields
	// fewer records than claimed, here no question at all.
	headerOnly := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	headerAn := []byte{0x12, 0x35, 0x01, 0x00, 0, 1, 0, 1, 0, 0, 0, 2}
	ednsV1 := pack(func(m *dns.Msg) { m.SetEdns0(1232, true); m.IsEdns0().SetVersion(1) })
	ednsV255ANY := pack(func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(255)
		m.Question[0].Qtype = dns.TypeANY
	})
	twoOPT := pack(func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(4096)
		m.Extra = append(m.Extra, o)
	})
	optInAnswer := pack(func(m *dns.Msg) {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		m.Answer = []dns.RR{o}
	})
	cases := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no reply expected
	}{
		{"truncated header", vb[:5], -1},
		{"qdcount 0", zerob, dns.RcodeFormatError},
		{"qdcount 2", twob, dns.RcodeFormatError},
		{"QR set", qrb, -1},
		{"opcode UPDATE", updb, dns.RcodeNotImplemented},
		{"compression loop", loop, dns.RcodeFormatError},
		{"question cut short", vb[:len(vb)-3], dns.RcodeFormatError},
		{"empty", []byte{}, -1},
		{"qdcount 1, no question", headerOnly, dns.RcodeFormatError},
		{"counts claim an answer and two additional, none there", headerAn, dns.RcodeFormatError},
		{"EDNS version 1", ednsV1, dns.RcodeBadVers},
		{"EDNS version 255 with ANY", ednsV255ANY, dns.RcodeBadVers},
		{"two OPT records", twoOPT, dns.RcodeFormatError},
		{"OPT in the answer section", optInAnswer, dns.RcodeFormatError},
	}
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast path %v", fast), func(t *testing.T) {
			logs := &logRecorder{}
			tr := newTestResolverWith(t, Config{DisableFastPath: !fast, LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"a IN A 10.0.0.1"}}}},
				Options{Logger: slog.New(logs)})
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					buf, n, err := exchangeRaw(t, tr.addr, "", tc.pkt)
					if tc.rcode < 0 {
						assert.Error(t, err, "no reply")
					} else {
						require.NoError(t, err)
						m := new(dns.Msg)
						if uerr := m.Unpack(buf[:n]); uerr != nil {
							// The header is enough to read the rcode.
							require.GreaterOrEqual(t, n, 12)
							assert.Equal(t, tc.rcode, int(buf[3]&0x0f))
						} else {
							assert.Equal(t, tc.rcode, m.Rcode, dns.RcodeToString[m.Rcode])
							assert.Equal(t, binary.BigEndian.Uint16(tc.pkt), m.Id)
							if tc.rcode == dns.RcodeBadVers {
								opt := m.IsEdns0()
								require.NotNil(t, opt, "BADVERS comes in an OPT (RFC 6891 section 6.1.3)")
								assert.Zero(t, opt.Version(), "with the version we speak")
								assert.True(t, opt.Do() == (tc.name == "EDNS version 1"), "and the query's DO bit")
							}
						}
					}
					resp := tr.ask(t, "a.corp.test", dns.TypeA, false)
					require.Len(t, resp.Answer, 1, "still serving")
				})
			}
			assert.Zero(t, logs.count(slog.LevelError), "no packet made the chain fail: %v", logs.messages())
			assert.Zero(t, testutil.ToFloat64(tr.m.panics), "nor panic")
		})
	}
}

// exchangeRaw sends pkt over UDP to addr, from the address src ("" for
// any), and reads one reply within noReplyWait.
func exchangeRaw(t testing.TB, addr, src string, pkt []byte) ([]byte, int, error) {
	t.Helper()
	d := net.Dialer{}
	if src != "" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("udp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(pkt)
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(noReplyWait))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	return buf, n, err
}

// noReplyWait is how long a test waits before it counts a query as
// unanswered: loopback answers take well under a millisecond, so this
// only makes a test slower, never flaky.
const noReplyWait = 300 * time.Millisecond

// logRecorder is a slog.Handler that keeps every record, so tests can
// count what the resolver logs.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
	shared  *logRecorder // set on the handlers WithAttrs and WithGroup return
}

func (l *logRecorder) root() *logRecorder {
	if l.shared != nil {
		return l.shared
	}
	return l
}
func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	root := l.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	root.records = append(root.records, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return &logRecorder{shared: l.root()} }
func (l *logRecorder) WithGroup(string) slog.Handler      { return &logRecorder{shared: l.root()} }

func (l *logRecorder) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level {
			n++
		}
	}
	return n
}

func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		out = append(out, r.Message)
	}
	return out
}

// attr returns the value of key in the i-th record at level.
func (l *logRecorder) attr(level slog.Level, i int, key string) (slog.Value, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.Level != level {
			continue
		}
		if i--; i >= 0 {
			continue
		}
		var v slog.Value
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value, true
				return false
			}
			return true
		})
		return v, found
	}
	return slog.Value{}, false
}

// TestQueryLogOffByDefault: the log is off unless configured, and when on
// it is bounded and ages out. An entry is added just after the answer is
// sent, so the test waits for each one rather than read the log as soon
// as the answer arrives (CI once saw the third entry missing).
func TestQueryLogOffByDefault(t *testing.T) {
	tr := newTestResolver(t, Config{LocalZones: []LocalZone{{Name: "corp.test"}}})
	tr.ask(t, "x.corp.test", dns.TypeA, false)
	require.Eventually(t, func() bool { return testutil.CollectAndCount(tr.m.queries) > 0 }, 5*time.Second, 5*time.Millisecond, "the query was observed")
	assert.Never(t, func() bool { return len(tr.QueryLog()) > 0 }, 100*time.Millisecond, 5*time.Millisecond)
	on := newTestResolver(t, Config{LocalZones: []LocalZone{{Name: "corp.test"}}, QueryLog: QueryLogConfig{Enabled: true, Size: 2, Retention: time.Minute}})
	for _, n := range []string{"a.corp.test", "b.corp.test", "c.corp.test"} {
		on.ask(t, n, dns.TypeA, false)
		require.Eventually(t, func() bool {
			got := on.QueryLog()
			return len(got) > 0 && got[len(got)-1].Name == n+"."
		}, 5*time.Second, 5*time.Millisecond, "%s logged", n)
	}
	got := on.QueryLog()
	require.Len(t, got, 2, "bounded")
	assert.Equal(t, "b.corp.test.", got[0].Name)
	assert.Equal(t, "c.corp.test.", got[1].Name)
	on.clock.Add(2 * time.Minute)
	assert.Empty(t, on.QueryLog(), "aged out")
}

func TestURLListsKeepLastGoodCopy(t *testing.T) {
	var fail atomic.Bool
	var body atomic.Value
	body.Store("phishing.test\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", 503)
			return
		}
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	tr := newTestResolver(t, Config{ListDir: t.TempDir(),
		Lists: []ListConfig{{Name: "remote", Category: "phishing", Format: "domains", URL: srv.URL}}})
	assert.Equal(t, dns.RcodeNameError, tr.ask(t, "phishing.test", dns.TypeA, false).Rcode)

	body.Store("phishing.test\nmore.test\n")
	require.NoError(t, tr.Reload(context.Background()))
	assert.True(t, tr.Explain2(t, "more.test").Decision.Blocked, "reload picked up the new rule")

	fail.Store(true)
	require.NoError(t, tr.Reload(context.Background()))
	assert.True(t, tr.Explain2(t, "more.test").Decision.Blocked, "a failed download keeps the last good list")
	assert.Contains(t, tr.Lists()[0].Err, "503")
	assert.Contains(t, tr.Lists()[0].Err, "last good copy")
}

func (tr *testResolver) Explain2(t *testing.T, name string) Explanation {
	e, err := tr.Explain(name)
	require.NoError(t, err)
	return e
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{BlockMode: "sinkhole"}, "block_mode"},
		{Config{EDE: 3}, "ede 3"},
		{Config{Lists: []ListConfig{{Name: "x", Category: "ads", Format: "csv", Path: "/x"}}}, "unknown list format"},
		{Config{Lists: []ListConfig{{Name: "x", Category: "ads", Format: "domains"}}}, "exactly one of path and url"},
		{Config{Lists: []ListConfig{{Name: "x", Category: "ads", Format: "domains", URL: "http://x"}}}, "list_dir"},
		{Config{Upstreams: []UpstreamConfig{{Addr: "1.1.1.1", Proto: "quic"}}}, "proto"},
		{Config{LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"a IN A notanip"}}}}, "record 1"},
		{Config{RateLimit: RateLimitConfig{QPS: 10, IPv6Prefix: 72}}, "rate_limit.ipv6_prefix 72: want 32 to 64"},
		{Config{RateLimit: RateLimitConfig{QPS: 10, IPv6Prefix: 16}}, "rate_limit.ipv6_prefix 16"},
		{Config{RateLimit: RateLimitConfig{QPS: 10, IPv4Prefix: 33}}, "rate_limit.ipv4_prefix 33: want 16 to 32"},
		{Config{RateLimit: RateLimitConfig{IPv4Prefix: 8}}, "rate_limit.ipv4_prefix 8"},
	} {
		_, err := New(context.Background(), tc.cfg, Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// BenchmarkServeDNS measures the edge and chain per query, without the
// socket: half blocked names (1M-entry list), half local names.
func BenchmarkServeDNS(b *testing.B) {
	list := synthList(b, 1_000_000)
	var recs []string
	for i := range 1000 {
		recs = append(recs, fmt.Sprintf("host%d IN A 10.0.%d.%d", i, i/256, i%256))
	}
	r, err := New(context.Background(), Config{
		Lists:      []ListConfig{{Name: "synthetic", Category: "malware", Format: "domains", Path: list}},
		LocalZones: []LocalZone{{Name: "corp.test", Records: recs}},
	}, Options{})
	require.NoError(b, err)
	qs := make([]*dns.Msg, 1024)
	for i := range qs {
		q := new(dns.Msg)
		if i%2 == 0 {
			q.SetQuestion(fmt.Sprintf("host%d-%x.blocked%d.example.", i*7, uint32(i*7)*2654435761, (i*7)%1000), dns.TypeA)
		} else {
			q.SetQuestion(fmt.Sprintf("host%d.corp.test.", i%1000), dns.TypeA)
		}
		qs[i] = q
	}
	w := &fakeWriter{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.ServeDNS(w, qs[i&1023])
	}
}

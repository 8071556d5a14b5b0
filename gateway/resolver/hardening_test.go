package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// panicLink is a link that panics on every query, standing in for a bug.
type panicLink struct{}

func (panicLink) wrap(Handler) Handler {
	return HandlerFunc(func(context.Context, *Request) (*dns.Msg, error) { panic("injected") })
}

// TestPanicLogIsRateLimited: a panic in the chain is recovered and
// answered SERVFAIL every time, but its error log is written at most
// panicLogBurst times per panicLogInterval, and the next one says how
// many went unlogged.
func TestPanicLogIsRateLimited(t *testing.T) {
	logs := &logRecorder{}
	clk := &fakeClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	r, err := New(context.Background(), Config{}, Options{Logger: slog.New(logs), Now: clk.Now})
	require.NoError(t, err)
	// Where the filter stands: the links before it run as usual.
	r.links[2] = panicLink{}
	r.wrapLinks()
	q := new(dns.Msg)
	q.SetQuestion("boom.example.", dns.TypeA)
	const n = 200
	for range n {
		w := &fakeWriter{}
		r.ServeDNS(w, q)
		require.NotNil(t, w.out)
		require.Equal(t, dns.RcodeServerFailure, w.out.Rcode)
	}
	assert.Equal(t, panicLogBurst, logs.count(slog.LevelError), "%d panics, a bounded log", n)
	assert.EqualValues(t, n, testutil.ToFloat64(r.m.panics), "the metric counts every one")

	clk.Add(panicLogInterval)
	r.ServeDNS(&fakeWriter{}, q)
	require.Equal(t, panicLogBurst+1, logs.count(slog.LevelError), "a new interval logs again")
	v, ok := logs.attr(slog.LevelError, panicLogBurst, "not_logged_since_last")
	require.True(t, ok)
	assert.EqualValues(t, n-panicLogBurst, v.Int64(), "with the count of the panics not logged")
	_, ok = logs.attr(slog.LevelError, panicLogBurst, "stack")
	assert.True(t, ok, "and a stack")
}

// TestRateLimitBeforeAnyWork: once a client's bucket is empty, nothing it
// sends gets past the limiter on either path: not a query the validation
// would refuse, not a malformed one, not a blocked, local or forwarded
// name (issue 13 case 4: validation, and a panic's stack trace, came
// before the limiter).
func TestRateLimitBeforeAnyWork(t *testing.T) {
	headerOnly := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast path %v", fast), func(t *testing.T) {
			up := startUpstream(t, answerA)
			const burst = 2
			tr := newTestResolver(t, Config{DisableFastPath: !fast, Upstreams: []UpstreamConfig{{Addr: up.addr}},
				Lists:      []ListConfig{{Name: "phish", Category: "phishing", Format: "domains", Path: writeList(t, "phishing.test\n")}},
				LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"a IN A 10.0.0.1"}}},
				RateLimit:  RateLimitConfig{QPS: 1, Burst: burst, Slip: -1}})
			for range burst {
				require.Len(t, tr.ask(t, "a.corp.test", dns.TypeA, false).Answer, 1)
			}
			for name, pkt := range map[string][]byte{
				"ANY":                    queryPacket(t, "up.example.", dns.TypeANY, nil),
				"qdcount 1, no question": headerOnly,
				"EDNS version 1":         queryPacket(t, "up.example.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }),
				"class CH":               queryPacket(t, "up.example.", dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }),
				"a blocked name":         queryPacket(t, "phishing.test.", dns.TypeA, nil),
				"a local name":           queryPacket(t, "a.corp.test.", dns.TypeA, nil),
				"a forwarded name":       queryPacket(t, "up.example.", dns.TypeA, nil),
			} {
				_, _, err := exchangeRaw(t, tr.addr, "", pkt)
				assert.Error(t, err, "%s: dropped by the limiter", name)
			}
			assert.Zero(t, up.queries.Load(), "nothing reached the upstream")
		})
	}
}

func queryPacket(t testing.TB, name string, qtype uint16, f func(*dns.Msg)) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if f != nil {
		f(m)
	}
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

// TestPathsAgree sends one sequence of queries, well-formed and not, to a
// resolver with the fast path and to one without, under the same rate
// limit: each query gets the same answer, or the same silence, from both.
func TestPathsAgree(t *testing.T) {
	up := startUpstream(t, answerA)
	var pkts [][]byte
	add := func(name string, qtype uint16, f func(*dns.Msg)) {
		pkts = append(pkts, queryPacket(t, name, qtype, func(m *dns.Msg) {
			m.Id = uint16(1000 + len(pkts))
			if f != nil {
				f(m)
			}
		}))
	}
	edns := func(m *dns.Msg) { m.SetEdns0(1232, true) }
	add("phishing.test.", dns.TypeA, edns)
	add("intranet.corp.test.", dns.TypeA, nil)
	add("up.example.", dns.TypeA, edns)
	add("up.example.", dns.TypeANY, nil)
	pkts = append(pkts, []byte{0x05, 0x00, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0})
	add("intranet.corp.test.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) })
	add("intranet.corp.test.", dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.Extra = append(m.Extra, m.Extra[0])
	})
	add("Login.Phishing.test.", dns.TypeAAAA, nil)
	add("intranet.corp.test.", dns.TypeMX, nil)
	add("nowhere.corp.test.", dns.TypeA, edns)
	add("up.example.", dns.TypeA, nil)
	add("intranet.corp.test.", dns.TypeA, edns)
	add("phishing.test.", dns.TypeTXT, nil)
	add("intranet.corp.test.", dns.TypeAAAA, nil)

	const burst = 6
	outcomes := map[bool][]string{}
	for _, fast := range []bool{true, false} {
		tr := newTestResolver(t, Config{DisableFastPath: !fast, Upstreams: []UpstreamConfig{{Addr: up.addr}},
			Lists:      []ListConfig{{Name: "phish", Category: "phishing", Format: "domains", Path: writeList(t, "phishing.test\n")}},
			LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"intranet IN A 10.77.0.10"}}},
			RateLimit:  RateLimitConfig{QPS: 1, Burst: burst, Slip: 2}})
		for _, pkt := range pkts {
			buf, n, err := exchangeRaw(t, tr.addr, "", pkt)
			if err != nil {
				outcomes[fast] = append(outcomes[fast], "no reply")
				continue
			}
			m := new(dns.Msg)
			require.NoError(t, m.Unpack(buf[:n]))
			outcomes[fast] = append(outcomes[fast], m.String())
		}
	}
	for i := range pkts {
		assert.Equal(t, outcomes[false][i], outcomes[true][i], "query %d: the fast path (right) differs from the chain (left)", i)
	}
	// And the limit did bite: the burst answered, then silence and slips.
	var silent, slipped int
	for i, o := range outcomes[true] {
		switch {
		case o == "no reply":
			silent++
		case i >= burst:
			slipped++
			assert.Contains(t, o, " tc", "query %d past the burst: a slip", i)
		}
	}
	assert.Equal(t, len(pkts)-burst, silent+slipped)
	assert.Positive(t, silent)
	assert.Positive(t, slipped)
}

// TestRateLimitKeys: inside the peer prefixes (the tunnel pool) each
// address has its own bucket, so one peer's flood does not limit
// another (issue 13 case 5: the pool's /24 was one bucket); outside them
// a network shares one, by the configured prefix lengths. The same on
// the fast path and the chain.
func TestRateLimitKeys(t *testing.T) {
	const burst = 3
	pool := netip.MustParsePrefix("10.99.0.0/24")
	for _, tc := range []struct {
		name       string
		rl         RateLimitConfig
		flood      string
		others     []string // after flood has emptied its bucket
		wantLimits []bool
	}{
		{"a peer floods", RateLimitConfig{}, "10.99.0.2", []string{"10.99.0.3", "10.99.0.254", "10.99.0.2"}, []bool{false, false, true}},
		{"an outsider floods its /24", RateLimitConfig{}, "192.0.2.10", []string{"192.0.2.200", "192.0.3.1", "10.99.1.2"}, []bool{true, false, false}},
		{"a pool's neighbour is an outsider", RateLimitConfig{}, "10.99.1.2", []string{"10.99.1.3", "10.99.0.3"}, []bool{true, false}},
		{"IPv6 by /56", RateLimitConfig{}, "2001:db8:1:100::1", []string{"2001:db8:1:1ff::2", "2001:db8:1:200::1"}, []bool{true, false}},
		{"IPv6 by /64, IPv4 by /32", RateLimitConfig{IPv4Prefix: 32, IPv6Prefix: 64}, "2001:db8:1:100::1", []string{"2001:db8:1:100:ffff::2", "2001:db8:1:101::1"}, []bool{true, false}},
		{"IPv4 by /32", RateLimitConfig{IPv4Prefix: 32, IPv6Prefix: 64}, "192.0.2.10", []string{"192.0.2.11", "192.0.2.10"}, []bool{false, true}},
	} {
		for _, fast := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, fast path %v", tc.name, fast), func(t *testing.T) {
				rl := tc.rl
				rl.QPS, rl.Burst, rl.Slip = 1, burst, -1
				clk := &fakeClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
				r, err := New(context.Background(), Config{RateLimit: rl,
					LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"a IN A 10.0.0.1"}}}},
					Options{Now: clk.Now, PeerPrefixes: []netip.Prefix{pool}})
				require.NoError(t, err)
				pkt := queryPacket(t, "a.corp.test.", dns.TypeA, nil)
				limited := func(client string) bool {
					ua := &net.UDPAddr{IP: net.ParseIP(client), Port: 5353}
					if fast {
						var fq fastQuery
						resp, _, handled := r.fastAnswer(pkt, ua, &fq, nil)
						require.True(t, handled, "the fast path answers a local name")
						return resp == nil
					}
					q := new(dns.Msg)
					require.NoError(t, q.Unpack(pkt))
					w := &fakeWriter{remote: ua}
					r.ServeDNS(w, q)
					return w.out == nil
				}
				for i := range 10 {
					assert.Equal(t, i >= burst, limited(tc.flood), "%s, query %d", tc.flood, i)
				}
				for i, c := range tc.others {
					assert.Equal(t, tc.wantLimits[i], limited(c), c)
				}
			})
		}
	}
}

// TestRateLimitPerPeerOverTheWire is TestRateLimitKeys with real sockets
// on both paths. Loopback stands in for the tunnel: the test can bind any
// address of 127.0.0.0/8, so 127.99.0.0/24 plays the pool and 127.98.0.0/24
// an outside network.
func TestRateLimitPerPeerOverTheWire(t *testing.T) {
	const burst = 3
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast path %v", fast), func(t *testing.T) {
			tr := newTestResolverWith(t, Config{DisableFastPath: !fast,
				LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"a IN A 10.0.0.1"}}},
				RateLimit:  RateLimitConfig{QPS: 1, Burst: burst, Slip: -1}},
				Options{PeerPrefixes: []netip.Prefix{netip.MustParsePrefix("127.99.0.0/24")}})
			pkt := queryPacket(t, "a.corp.test.", dns.TypeA, nil)
			answered := func(src string) bool {
				_, _, err := exchangeRaw(t, tr.addr, src, pkt)
				return err == nil
			}
			for i := range burst + 2 {
				assert.Equal(t, i < burst, answered("127.99.0.2"), "peer 127.99.0.2, query %d", i)
			}
			assert.True(t, answered("127.99.0.3"), "another peer has its own bucket")
			for i := range burst + 1 {
				assert.Equal(t, i < burst, answered("127.98.0.2"), "outsider 127.98.0.2, query %d", i)
			}
			assert.False(t, answered("127.98.0.3"), "its /24 shares the bucket")
		})
	}
}

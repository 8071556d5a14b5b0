package netdiag

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func ids(vs []Verdict) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// healthy is a report every verdict leaves alone.
func healthy() *Report {
	return &Report{
		Mode: ModeFull,
		Latency: LatencyReport{Targets: []LatencyTarget{
			{Name: "router", Addr: "192.168.1.1", Method: MethodICMP, LatencyStats: LatencyStats{MedianMS: 1, P90MS: 2, Sent: 10, Samples: 10}},
			{Name: "gateway", Addr: "198.51.100.1", Method: MethodICMP, LatencyStats: LatencyStats{MedianMS: 12, P90MS: 14, Sent: 10, Samples: 10}},
		}},
		Throughput:     &ThroughputReport{DownloadMbps: 200, UploadMbps: 40, Download: &DirectionReport{}, Upload: &DirectionReport{}},
		Responsiveness: &ResponsivenessReport{IdleMS: 12, LoadedDownMS: 20, LoadedUpMS: 25, BufferbloatGrade: "A", IncreaseMS: 13},
		DNS: &DNSReport{Resolvers: []ResolverReport{{Addr: "192.168.1.1:53", Role: "system", UDP: ptr(true), TCP: ptr(true), NXDOMAIN: "ok",
			LatencyStats: LatencyStats{MedianMS: 8, P90MS: 12, Sent: 10, Samples: 10}}}},
		Path:    &PathReport{UDP: &UDPReport{Port: 51820, Reachable: true}, MTU: &MTUReport{PathMTU: 1500, TunnelMTU: 1420}, IPv6: &IPv6Report{GlobalAddr: true}},
		Network: &NetworkReport{Type: "ethernet"},
	}
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		filtered bool // DNSConfig.ExpectFiltered
		change   func(r *Report)
		want     []string // exactly these verdicts
		sugg     []string // at least these suggestions
	}{
		{"healthy", false, func(*Report) {}, nil, nil},
		{"weak wifi and a slow first hop", false, func(r *Report) {
			r.Network = &NetworkReport{Type: "wifi", WiFi: &WiFiReport{SignalDBM: ptr(-78)}}
			r.Latency.Targets[0].MedianMS, r.Latency.Targets[0].P90MS = 25, 60
		}, []string{"wifi_weak", "lan_latency_high"}, []string{"move_closer_to_router"}},
		// On a cable, walking closer to the router cannot help.
		{"a slow first hop on a cable", false, func(r *Report) {
			r.Latency.Targets[0].MedianMS, r.Latency.Targets[0].P90MS = 25, 60
		}, []string{"lan_latency_high"}, []string{"check_router"}},
		{"open wifi", false, func(r *Report) {
			r.Network = &NetworkReport{Type: "wifi", WiFi: &WiFiReport{Security: "open", SignalDBM: ptr(-50)}}
		}, []string{"untrusted_network"}, []string{"use_full_tunnel"}},
		{"slow DNS", false, func(r *Report) { r.DNS.Resolvers[0].MedianMS = 180 }, []string{"dns_slow"}, []string{"use_company_dns"}},
		{"one of two resolvers dead", false, func(r *Report) {
			r.DNS.Resolvers = append(r.DNS.Resolvers, ResolverReport{Addr: "192.168.1.2:53", Role: "system", UDP: ptr(false), TCP: ptr(false), LatencyStats: LatencyStats{Sent: 10, LossPct: 100}})
		}, []string{"dns_broken"}, nil},
		{"a company resolver's trouble is not the system's", false, func(r *Report) {
			r.DNS.Resolvers = append(r.DNS.Resolvers, ResolverReport{Addr: "10.99.0.1:53", Role: "company", UDP: ptr(false), TCP: ptr(false), LatencyStats: LatencyStats{Sent: 10, LossPct: 100}})
		}, nil, nil},
		{"filter bypassed in tunnel mode", true, func(r *Report) {
			r.DNS.Filter = &FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(true), BypassedBy: []string{"192.168.1.1:53"}}
		}, []string{"dns_filter_bypassed"}, []string{"use_full_tunnel"}},
		{"not bypassed off the tunnel", false, func(r *Report) {
			r.DNS.Filter = &FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(true), BypassedBy: []string{"192.168.1.1:53"}}
		}, nil, nil},
		{"a transparent DNS proxy", false, func(r *Report) { r.DNS.Resolvers[0].AnswerFrom = "203.0.113.9" }, []string{"dns_hijack", "untrusted_network"}, nil},
		{"slow but capped by the gateway's guard", false, func(r *Report) {
			r.Throughput.DownloadMbps, r.Throughput.UploadMbps, r.Throughput.ServerCapMbps = 20, 20, 20
		}, nil, nil},
		{"slow line, fine for a call", false, func(r *Report) { r.Throughput.DownloadMbps, r.Throughput.UploadMbps = 12, 2.5 },
			[]string{"line_saturated", "line_slow"}, []string{"use_hotspot"}},
		{"a busy line: loaded latency too high", false, func(r *Report) {
			r.Responsiveness.LoadedUpMS, r.Responsiveness.IncreaseMS, r.Responsiveness.BufferbloatGrade = 240, 228, "D"
		}, []string{"line_saturated", "bufferbloat"}, []string{"use_hotspot", "enable_sqm"}},
		{"loss on UDP that ICMP does not see", false, func(r *Report) { r.Path.Loss = &LossReport{Method: MethodSTAMP, Sent: 40, LossPct: 7.5} },
			[]string{"high_loss"}, []string{"use_hotspot"}},
		{"a failed measurement is not a slow line", false, func(r *Report) {
			r.Throughput.DownloadMbps, r.Throughput.Download.Error = 0, "GET: connection reset"
		}, nil, nil},
		{"no IPv6", false, func(r *Report) { r.Path.IPv6.GlobalAddr = false }, []string{"ipv6_missing"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.change(r)
			vs, ss := judge(r, tc.filtered)
			assert.ElementsMatch(t, tc.want, ids(vs))
			var sids []string
			for _, s := range ss {
				sids = append(sids, s.ID)
			}
			for _, s := range tc.sugg {
				assert.Contains(t, sids, s)
			}
			for i := 1; i < len(vs); i++ {
				assert.GreaterOrEqual(t, vs[i-1].Severity.rank(), vs[i].Severity.rank(), "most severe first")
			}
			for _, v := range vs {
				assert.NotEmpty(t, v.Summary)
				assert.NotEmpty(t, v.Evidence)
				assert.NotEmpty(t, v.Threshold)
			}
		})
	}
}

func TestSummaryLeadsWithTheWorstFinding(t *testing.T) {
	r := healthy()
	r.Responsiveness.LoadedUpMS, r.Responsiveness.IncreaseMS, r.Responsiveness.BufferbloatGrade = 240, 228, "D"
	r.Path.Captive = &CaptiveReport{URL: "http://x/generate_204", Captive: true, Status: 302, RedirectTo: "http://portal/"}
	r.Verdicts, r.Suggestions = judge(r, false)
	s := summarize(r)
	assert.Contains(t, s, "sign in")
	assert.Contains(t, s, "more findings below")
}

// TestSlowFirstHopAdviceFollowsTheLink: "move closer to the Wi-Fi
// router" is advice for Wi-Fi, or for a link of unknown kind, never for a
// cable or a virtual interface.
func TestSlowFirstHopAdviceFollowsTheLink(t *testing.T) {
	for _, tc := range []struct {
		network *NetworkReport
		want    string
		never   string
	}{
		{&NetworkReport{Type: "wifi"}, "move_closer_to_router", "check_router"},
		{nil, "move_closer_to_router", "check_router"},
		{&NetworkReport{Type: "ethernet"}, "check_router", "move_closer_to_router"},
		{&NetworkReport{Type: "virtual"}, "check_router", "move_closer_to_router"},
	} {
		r := healthy()
		r.Network = tc.network
		r.Latency.Targets[0].MedianMS = 25
		_, ss := judge(r, false)
		var sids []string
		for _, s := range ss {
			sids = append(sids, s.ID)
		}
		assert.Contains(t, sids, tc.want, "%+v", tc.network)
		assert.NotContains(t, sids, tc.never, "%+v", tc.network)
	}
}

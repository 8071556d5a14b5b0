package netdiag

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/tetherwfh/tether/netdiag/report"
)

func ids(vs []report.Verdict) []report.VerdictID {
	var out []report.VerdictID
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// healthy is a report every verdict leaves alone.
func healthy() *report.Report {
	return &report.Report{
		Mode: report.ModeFull,
		Latency: report.LatencyReport{Targets: []report.LatencyTarget{
			{Name: "router", Addr: "192.168.1.1", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MinMS: 0.8, MedianMS: 1, P90MS: 2, Sent: 10, Samples: 10}},
			{Name: "gateway", Addr: "198.51.100.1", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MinMS: 11, MedianMS: 12, P90MS: 14, Sent: 10, Samples: 10}},
		}},
		Throughput:     &report.ThroughputReport{DownloadMbps: 200, UploadMbps: 40, Download: &report.DirectionReport{}, Upload: &report.DirectionReport{}},
		Responsiveness: &report.ResponsivenessReport{IdleMS: 12, LoadedDownMS: 20, LoadedUpMS: 25, BufferbloatGrade: "A", IncreaseMS: 13},
		DNS: &report.DNSReport{Resolvers: []report.ResolverReport{{Addr: "192.168.1.1:53", Role: "system", UDP: ptr(true), TCP: ptr(true), NXDOMAIN: "ok",
			LatencyStats: report.LatencyStats{MedianMS: 8, P90MS: 12, Sent: 10, Samples: 10}}}},
		Path:    &report.PathReport{UDP: &report.UDPReport{Port: 51820, Reachable: true}, MTU: &report.MTUReport{PathMTU: 1500, TunnelMTU: 1420}, IPv6: &report.IPv6Report{GlobalAddr: true}},
		Network: &report.NetworkReport{Type: "ethernet"},
		Service: &report.ServiceReport{URL: "https://198.51.100.1:8443/healthz", Port: 8443, Answers: true, Status: 200},
	}
}

// companyResolver is a working company resolver's report.
func companyResolver() report.ResolverReport {
	return report.ResolverReport{Addr: "10.99.0.1:53", Role: "company", UDP: ptr(true), TCP: ptr(true), Resolves: ptr(true), NXDOMAIN: "ok",
		LatencyStats: report.LatencyStats{MedianMS: 20, P90MS: 25, Sent: 10, Samples: 10}}
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		filtered bool // DNSConfig.ExpectFiltered
		change   func(r *report.Report)
		want     []report.VerdictID    // exactly these verdicts
		sugg     []report.SuggestionID // at least these suggestions
		never    []report.SuggestionID // none of these suggestions
	}{
		{"healthy", false, func(*report.Report) {}, nil, nil, nil},
		{"weak wifi and a slow first hop", false, func(r *report.Report) {
			r.Network = &report.NetworkReport{Type: "wifi", WiFi: &report.WiFiReport{SignalDBM: ptr(-78)}}
			r.Latency.Targets[0].MedianMS, r.Latency.Targets[0].P90MS = 25, 60
		}, []report.VerdictID{report.VerdictWiFiWeak, report.VerdictLANLatencyHigh}, []report.SuggestionID{report.SuggestionMoveCloserToRouter}, nil},
		// On a cable, walking closer to the router cannot help.
		{"a slow first hop on a cable", false, func(r *report.Report) {
			r.Latency.Targets[0].MedianMS, r.Latency.Targets[0].P90MS = 25, 60
		}, []report.VerdictID{report.VerdictLANLatencyHigh}, []report.SuggestionID{report.SuggestionCheckRouter}, nil},
		{"open wifi", false, func(r *report.Report) {
			r.Network = &report.NetworkReport{Type: "wifi", WiFi: &report.WiFiReport{Security: "open", SignalDBM: ptr(-50)}}
		}, []report.VerdictID{report.VerdictUntrustedNetwork}, nil, nil},
		{"slow DNS", false, func(r *report.Report) { r.DNS.Resolvers[0].MedianMS = 180 }, []report.VerdictID{report.VerdictDNSSlow}, []report.SuggestionID{report.SuggestionUseCompanyDNS}, nil},
		{"one of two resolvers dead", false, func(r *report.Report) {
			r.DNS.Resolvers = append(r.DNS.Resolvers, report.ResolverReport{Addr: "192.168.1.2:53", Role: "system", UDP: ptr(false), TCP: ptr(false), LatencyStats: report.LatencyStats{Sent: 10, LossPct: 100}})
		}, []report.VerdictID{report.VerdictDNSBroken}, nil, nil},
		// Not the system's DNS (dns_broken), but the company's own.
		{"a company resolver's trouble is not the system's", false, func(r *report.Report) {
			r.DNS.Resolvers = append(r.DNS.Resolvers, report.ResolverReport{Addr: "10.99.0.1:53", Role: "company", UDP: ptr(false), TCP: ptr(false), LatencyStats: report.LatencyStats{Sent: 10, LossPct: 100}})
		}, []report.VerdictID{report.VerdictDNSCompanyBroken}, []report.SuggestionID{report.SuggestionContactHelpdesk}, []report.SuggestionID{report.SuggestionUseCompanyDNS}},
		// Case 11: the company's filter itself is off.
		{"the company resolver does not block the canary", false, func(r *report.Report) {
			r.DNS.Resolvers = append(r.DNS.Resolvers, companyResolver())
			r.DNS.Filter = &report.FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(false), CompanyAnswer: "NOERROR 198.18.0.66", Control: "example.com", ControlResolves: ptr(true)}
		}, []report.VerdictID{report.VerdictDNSFilterOff}, []report.SuggestionID{report.SuggestionContactHelpdesk}, nil},
		{"the company resolver blocks the canary", true, func(r *report.Report) {
			r.DNS.Resolvers = append(r.DNS.Resolvers, companyResolver())
			r.DNS.Filter = &report.FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(true), BlockMarker: markerEDE, Control: "example.com", ControlResolves: ptr(true)}
		}, nil, nil, nil},
		{"a company resolver that refuses every name", false, func(r *report.Report) {
			c := companyResolver()
			c.Resolves, c.ProbeAnswer = ptr(false), "REFUSED for example.com"
			r.DNS.Resolvers = append(r.DNS.Resolvers, c)
			r.DNS.Filter = &report.FilterReport{Canary: "phishing.test", CompanyAnswer: "REFUSED", Control: "example.com", ControlResolves: ptr(false)}
		}, []report.VerdictID{report.VerdictDNSCompanyBroken}, []report.SuggestionID{report.SuggestionContactHelpdesk}, nil},
		// NXDOMAIN for everything: neither a working filter nor a filter off.
		{"a company resolver that answers every name NXDOMAIN", false, func(r *report.Report) {
			c := companyResolver()
			c.Resolves, c.ProbeAnswer = ptr(false), "NXDOMAIN for example.com"
			r.DNS.Resolvers = append(r.DNS.Resolvers, c)
			r.DNS.Filter = &report.FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(false), CompanyAnswer: "NXDOMAIN, SOA of \"test.\"", Control: "example.com", ControlResolves: ptr(false)}
		}, []report.VerdictID{report.VerdictDNSCompanyBroken}, nil, nil},
		{"a system resolver that refuses every name", false, func(r *report.Report) {
			r.DNS.Resolvers[0].Resolves, r.DNS.Resolvers[0].ProbeAnswer = ptr(false), "REFUSED for example.com"
		}, []report.VerdictID{report.VerdictDNSBroken}, []report.SuggestionID{report.SuggestionUseCompanyDNS}, nil},
		// Case 12: an interceptor answers for an address with no server.
		{"a transparent DNS interceptor", false, func(r *report.Report) {
			r.DNS.Interception = &report.InterceptReport{Intercepted: true, Probes: []report.InterceptProbe{
				{Addr: "192.0.2.1:53", Answered: true, RTTMS: 0.4, Answer: "NOERROR 93.184.215.14"},
				{Addr: "[2001:db8::1]:53", Error: "connect: network is unreachable"}}}
		}, []report.VerdictID{report.VerdictDNSIntercepted, report.VerdictUntrustedNetwork}, nil, nil},
		{"no interceptor", false, func(r *report.Report) {
			r.DNS.Interception = &report.InterceptReport{Probes: []report.InterceptProbe{{Addr: "192.0.2.1:53"}, {Addr: "[2001:db8::1]:53"}}}
		}, nil, nil, nil},
		{"filter bypassed in tunnel mode", true, func(r *report.Report) {
			r.DNS.Filter = &report.FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(true), BypassedBy: []string{"192.168.1.1:53"}}
		}, []report.VerdictID{report.VerdictDNSFilterBypassed}, nil, nil},
		{"not bypassed off the tunnel", false, func(r *report.Report) {
			r.DNS.Filter = &report.FilterReport{Canary: "phishing.test", CompanyBlocks: ptr(true), BypassedBy: []string{"192.168.1.1:53"}}
		}, nil, nil, nil},
		{"a transparent DNS proxy", false, func(r *report.Report) { r.DNS.Resolvers[0].AnswerFrom = "203.0.113.9" }, []report.VerdictID{report.VerdictDNSHijack, report.VerdictUntrustedNetwork}, nil, nil},
		{"slow but capped by the gateway's guard", false, func(r *report.Report) {
			r.Throughput.DownloadMbps, r.Throughput.UploadMbps, r.Throughput.ServerCapMbps = 20, 20, 20
		}, nil, nil, nil},
		{"a slow uplink cannot carry a call", false, func(r *report.Report) { r.Throughput.DownloadMbps, r.Throughput.UploadMbps = 12, 2.5 },
			[]report.VerdictID{report.VerdictLineSaturated, report.VerdictLineSlow}, []report.SuggestionID{report.SuggestionUseHotspot}, nil},
		{"slow, but it carries a call", false, func(r *report.Report) { r.Throughput.DownloadMbps, r.Throughput.UploadMbps = 20, 5 },
			[]report.VerdictID{report.VerdictLineSlow}, nil, []report.SuggestionID{report.SuggestionUseHotspot}},
		// Case 13: the delay under Tether's own load is bufferbloat, not
		// saturation.
		{"a bloated line with room to spare", false, func(r *report.Report) {
			r.Responsiveness.LoadedUpMS, r.Responsiveness.IncreaseMS, r.Responsiveness.BufferbloatGrade = 240, 228, "D"
		}, []report.VerdictID{report.VerdictBufferbloat}, []report.SuggestionID{report.SuggestionEnableSQM}, []report.SuggestionID{report.SuggestionUseHotspot}},
		{"37/9 Mbit/s with a 250 ms queue and nothing else on it", false, func(r *report.Report) { bloated379(r) },
			[]report.VerdictID{report.VerdictBufferbloat}, []report.SuggestionID{report.SuggestionEnableSQM}, []report.SuggestionID{report.SuggestionUseHotspot}},
		{"saturated by capacity: others leave 2 Mbit/s up", false, func(r *report.Report) {
			bloated379(r)
			r.Throughput.UploadMbps = 2
		}, []report.VerdictID{report.VerdictLineSaturated, report.VerdictLineSlow, report.VerdictBufferbloat}, []report.SuggestionID{report.SuggestionUseHotspot, report.SuggestionEnableSQM}, nil},
		{"saturated by load already on it: the idle delay is over a call's", false, func(r *report.Report) {
			bloated379(r)
			gw := &r.Latency.Targets[1]
			gw.MinMS, gw.MedianMS, gw.P90MS = 214, 240, 250
			r.Responsiveness.IdleMS, r.Responsiveness.LoadedDownMS, r.Responsiveness.LoadedUpMS = 240, 270, 280
			r.Responsiveness.IncreaseMS, r.Responsiveness.BufferbloatGrade = 40, "B"
		}, []report.VerdictID{report.VerdictLineSaturated}, []report.SuggestionID{report.SuggestionUseHotspot}, nil},
		// The lab's saturated profile before its queue fills for good: the
		// idle delay under the limit, but standing well above its minimum.
		{"saturated by load already on it: a queue stands on the idle line", false, func(r *report.Report) {
			bloated379(r)
			gw := &r.Latency.Targets[1]
			gw.MinMS, gw.MedianMS, gw.P90MS = 95, 120, 135
			r.Path.Loss = &report.LossReport{Method: report.MethodSTAMP, Sent: 100, MinMS: 100, MedianMS: 123}
			r.Responsiveness.IdleMS, r.Responsiveness.LoadedDownMS, r.Responsiveness.LoadedUpMS = 120, 250, 285
			r.Responsiveness.IncreaseMS, r.Responsiveness.BufferbloatGrade = 165, "C"
		}, []report.VerdictID{report.VerdictLineSaturated, report.VerdictBufferbloat}, []report.SuggestionID{report.SuggestionUseHotspot, report.SuggestionEnableSQM}, nil},
		// The same spread at the router is the Wi-Fi's, not a queue on the line.
		{"a jittery Wi-Fi on a bloated line is not load on the line", false, func(r *report.Report) {
			bloated379(r)
			r.Network = &report.NetworkReport{Type: "wifi"}
			r.Latency.Targets[0].MinMS, r.Latency.Targets[0].MedianMS, r.Latency.Targets[0].P90MS = 1, 8, 20
			r.Latency.Targets[1].MinMS, r.Latency.Targets[1].MedianMS, r.Latency.Targets[1].P90MS = 3, 15, 28
		}, []report.VerdictID{report.VerdictBufferbloat}, []report.SuggestionID{report.SuggestionEnableSQM}, []report.SuggestionID{report.SuggestionUseHotspot}},
		{"on a phone's hotspot already", false, func(r *report.Report) {
			r.Network = &report.NetworkReport{Type: "tethered"}
			r.Throughput.UploadMbps = 2
		}, []report.VerdictID{report.VerdictLineSaturated, report.VerdictLineSlow}, nil, []report.SuggestionID{report.SuggestionUseHotspot}},
		{"dsl_bloated: 16/1 Mbit/s with a 300 ms queue", false, func(r *report.Report) {
			bloated379(r)
			r.Throughput.DownloadMbps, r.Throughput.UploadMbps = 15.2, 0.95
			r.Responsiveness.LoadedDownMS, r.Responsiveness.LoadedUpMS, r.Responsiveness.IncreaseMS = 146, 310, 309.9
		}, []report.VerdictID{report.VerdictLineSaturated, report.VerdictLineSlow, report.VerdictBufferbloat}, []report.SuggestionID{report.SuggestionUseHotspot, report.SuggestionEnableSQM}, nil},
		{"loss on UDP that ICMP does not see", false, func(r *report.Report) {
			r.Path.Loss = &report.LossReport{Method: report.MethodSTAMP, Sent: 40, LossPct: 7.5}
		},
			[]report.VerdictID{report.VerdictHighLoss}, []report.SuggestionID{report.SuggestionUseHotspot}, nil},
		// Case 14: the gateway's host answers, its service does not.
		{"the gateway's service is down", false, func(r *report.Report) {
			r.Service = &report.ServiceReport{URL: "https://198.51.100.1:8443/healthz", Port: 8443, Error: "connection refused"}
			r.Path.UDP = &report.UDPReport{Port: 51820, Sent: 3, Error: "no answer to 3 probes on UDP port 51820"}
		}, []report.VerdictID{report.VerdictGatewayUnreachable}, []report.SuggestionID{report.SuggestionContactHelpdesk}, []report.SuggestionID{report.SuggestionUseHotspot}},
		{"neither the gateway's host nor its service answers", false, func(r *report.Report) {
			r.Latency.Targets[1] = report.LatencyTarget{Name: "gateway", Addr: "198.51.100.1", Method: report.MethodNone, Error: "icmp: no answer"}
			r.Service = &report.ServiceReport{URL: "https://198.51.100.1:8443/healthz", Port: 8443, Error: "no answer within 1.5s"}
		}, []report.VerdictID{report.VerdictGatewayUnreachable}, nil, nil},
		{"the service answers, UDP does not", false, func(r *report.Report) {
			r.Path.UDP = &report.UDPReport{Port: 51820, Sent: 3, Error: "no answer to 3 probes on UDP port 51820"}
		}, []report.VerdictID{report.VerdictUDPBlocked}, []report.SuggestionID{report.SuggestionUseHotspot}, nil},
		{"a failed measurement is not a slow line", false, func(r *report.Report) {
			r.Throughput.DownloadMbps, r.Throughput.Download.Error = 0, "GET: connection reset"
		}, nil, nil, nil},
		{"no IPv6", false, func(r *report.Report) { r.Path.IPv6.GlobalAddr = false }, []report.VerdictID{report.VerdictIPv6Missing}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.change(r)
			vs, ss := judge(r, tc.filtered)
			assert.ElementsMatch(t, tc.want, ids(vs))
			var sids []report.SuggestionID
			for _, s := range ss {
				sids = append(sids, s.ID)
				assert.Contains(t, report.SuggestionIDs(), s.ID, "a suggestion the report package lists")
			}
			for _, s := range tc.sugg {
				assert.Contains(t, sids, s)
			}
			for _, s := range tc.never {
				assert.NotContains(t, sids, s)
			}
			for i := 1; i < len(vs); i++ {
				assert.GreaterOrEqual(t, vs[i-1].Severity.Rank(), vs[i].Severity.Rank(), "most severe first")
			}
			for _, v := range vs {
				assert.NotEmpty(t, v.Summary)
				assert.NotEmpty(t, v.Evidence)
				assert.NotEmpty(t, v.Threshold)
			}
		})
	}
}

// bloated379 is the line of case 13 of issue 13: 37/9 Mbit/s, nothing
// else on it (0.15 ms idle), and a 250 ms router queue that Tether's own
// load fills.
func bloated379(r *report.Report) {
	r.Latency.Targets[0].MinMS, r.Latency.Targets[0].MedianMS, r.Latency.Targets[0].P90MS = 0.05, 0.1, 0.2
	r.Latency.Targets[1].MinMS, r.Latency.Targets[1].MedianMS, r.Latency.Targets[1].P90MS = 0.1, 0.15, 0.3
	r.Throughput.DownloadMbps, r.Throughput.UploadMbps = 37, 9
	r.Responsiveness = &report.ResponsivenessReport{IdleMS: 0.15, LoadedDownMS: 60, LoadedUpMS: 250, IncreaseMS: 249.85, BufferbloatGrade: "D"}
}

func TestSummaryLeadsWithTheWorstFinding(t *testing.T) {
	r := healthy()
	r.Responsiveness.LoadedUpMS, r.Responsiveness.IncreaseMS, r.Responsiveness.BufferbloatGrade = 240, 228, "D"
	r.Path.Captive = &report.CaptiveReport{URL: "http://x/generate_204", Captive: true, Status: 302, RedirectTo: "http://portal/"}
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
		network *report.NetworkReport
		want    report.SuggestionID
		never   report.SuggestionID
	}{
		{&report.NetworkReport{Type: "wifi"}, report.SuggestionMoveCloserToRouter, report.SuggestionCheckRouter},
		{nil, report.SuggestionMoveCloserToRouter, report.SuggestionCheckRouter},
		{&report.NetworkReport{Type: "ethernet"}, report.SuggestionCheckRouter, report.SuggestionMoveCloserToRouter},
		{&report.NetworkReport{Type: "virtual"}, report.SuggestionCheckRouter, report.SuggestionMoveCloserToRouter},
	} {
		r := healthy()
		r.Network = tc.network
		r.Latency.Targets[0].MedianMS = 25
		_, ss := judge(r, false)
		var sids []report.SuggestionID
		for _, s := range ss {
			sids = append(sids, s.ID)
		}
		assert.Contains(t, sids, tc.want, "%+v", tc.network)
		assert.NotContains(t, sids, tc.never, "%+v", tc.network)
	}
}

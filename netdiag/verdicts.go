package netdiag

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetherwfh/tether/netdiag/report"
)

// Verdict thresholds, each with its source. The report carries them.
const (
	// videoCallMbps: a group HD video call needs about 3 Mbit/s each way
	// (Zoom's published requirement for group 720p is 3.0 Mbit/s down and
	// up, 1.8 for 1:1; Microsoft Teams lists up to 4 Mbit/s down for
	// group video). Below it in either direction the line cannot carry a
	// call.
	videoCallMbps = 3.0
	// videoCallIdleMS: interactivity degrades beyond 150 ms one-way
	// mouth-to-ear delay (ITU-T G.114). We hold the round trip a call
	// meets on the line as it is now, before any test load, to it, which
	// is stricter: over it the line cannot carry a call (line_saturated).
	videoCallIdleMS = 150.0
	// videoCallLoadedMS is the same limit for the round trip while the
	// line is loaded: past it, bufferbloat makes calls fail, not only
	// stutter, whenever someone uploads or downloads.
	videoCallLoadedMS = videoCallIdleMS
	// slowDownMbps and slowUpMbps: the FCC's 2015 broadband benchmark,
	// 25/3 Mbit/s; below it file syncs and screen sharing crawl.
	slowDownMbps = 25.0
	slowUpMbps   = 3.0
	// bufferbloatGrade: grade C and worse on the DSLReports scale (an
	// increase of 60 ms or more under load) makes calls stutter while the
	// line is busy.
	bufferbloatGrade = "C"
	// highLossPct: loss above 2% visibly hurts calls (ITU-T G.1050 and
	// common VoIP guidance put the tolerable limit at 1 to 2%).
	highLossPct = 2.0
	// wifiWeakDBM: enterprise Wi-Fi design guides (Cisco, Aruba) plan
	// voice and video for -67 dBm; below -70 dBm rates drop and retries
	// climb.
	wifiWeakDBM = -70
	// lanHighMS: the first hop answers in 1 to 5 ms over a healthy
	// Wi-Fi and under 1 ms over a cable; a median above 10 ms, or a p90
	// above 30 ms, means the LAN or Wi-Fi is congested or interfered with.
	lanHighMS    = 10.0
	lanHighP90MS = 30.0
	// dnsSlowMS: a lookup precedes every new connection; 100 ms is the
	// budget within which a response feels instant (Google's RAIL model).
	dnsSlowMS = 100.0
	// dnsBrokenLossPct: half the queries unanswered is broken for users:
	// every other page load stalls for the resolver's timeout.
	dnsBrokenLossPct = 50.0
	// priorLoadQueueMS: on a quiet line the idle round trip stays within
	// a few milliseconds of its minimum (under 1 ms wired; Wi-Fi's own
	// spread shows at the router too, and is taken off). Ten more at the
	// gateway is a queue other traffic keeps standing before Tether loads
	// the line: the lab's saturated profile shows 14 to 47 ms, its quiet
	// ones under 0.2 (measured).
	priorLoadQueueMS = 10.0
	// defaultTunnelMTU is wg-quick's default, 1500 - 80.
	defaultTunnelMTU = 1420
)

func verdictThresholds() report.VerdictThresholds {
	return report.VerdictThresholds{VideoCallMbps: videoCallMbps, VideoCallLoadedMS: videoCallLoadedMS, VideoCallIdleMS: videoCallIdleMS, SlowDownMbps: slowDownMbps,
		SlowUpMbps: slowUpMbps, BufferbloatGrade: bufferbloatGrade, HighLossPct: highLossPct, WiFiWeakDBM: wifiWeakDBM,
		LANHighMS: lanHighMS, LANHighP90MS: lanHighP90MS, DNSSlowMS: dnsSlowMS, DNSBrokenLossPct: dnsBrokenLossPct,
		DefaultTunnelMTU: defaultTunnelMTU, PriorLoadQueueMS: priorLoadQueueMS,
		TunnelOverheadMS: tunnelOverheadMS, TunnelThroughputRatio: tunnelThroughputRatio}
}

// target is the latency target called name, or nil when none answered.
func target(r *report.Report, name string) *report.LatencyTarget {
	for i := range r.Latency.Targets {
		if r.Latency.Targets[i].Name == name && r.Latency.Targets[i].Method != report.MethodNone {
			return &r.Latency.Targets[i]
		}
	}
	return nil
}

// judge derives the verdicts and suggestions from the measurements. It
// is pure: tests drive it with reports. expectFiltered is the run's
// DNSConfig.ExpectFiltered: whether the company filter should cover the
// system's lookups.
func judge(r *report.Report, expectFiltered bool) ([]report.Verdict, []report.Suggestion) {
	var vs []report.Verdict
	add := func(id report.VerdictID, sev report.Severity, area report.Area, summary, evidence, threshold string) {
		vs = append(vs, report.Verdict{ID: id, Severity: sev, Area: area, Summary: summary, Evidence: evidence, Threshold: threshold})
	}
	gw, router := target(r, "gateway"), target(r, "router")
	resp, tp := r.Responsiveness, r.Throughput

	// The network itself: what it lets through.
	if p := r.Path; p != nil {
		if c := p.Captive; c != nil && c.Captive {
			ev := fmt.Sprintf("%s answered %d, not 204", c.URL, c.Status)
			if c.RedirectTo != "" {
				ev += ", redirecting to " + c.RedirectTo
			}
			add(report.VerdictCaptivePortal, report.SeverityCritical, report.AreaNetwork, "This network wants you to sign in on a web page before it lets traffic through.", ev, "a 204 No Content answer from the check URL")
		}
	}
	// The gateway's service: its host answering pings says nothing of it.
	serviceDown := r.Service != nil && !r.Service.Answers
	if serviceDown {
		judgeService(r, gw, add)
	}
	if p := r.Path; p != nil {
		// With the service down too, silence on the WireGuard port is the
		// gateway's, not this network's: judgeService reports it.
		if u := p.UDP; u != nil && !u.Reachable && !serviceDown {
			add(report.VerdictUDPBlocked, report.SeverityCritical, report.AreaNetwork, fmt.Sprintf("This network blocks UDP to the gateway's port %d, so the WireGuard tunnel cannot connect.", u.Port),
				fmt.Sprintf("%d probes to UDP port %d went unanswered (%s)", u.Sent, u.Port, u.Error), "any answer to 3 probes within 1.6 s")
		}
		if m := p.MTU; m != nil && m.PathMTU > 0 && m.TunnelMTU < defaultTunnelMTU {
			add(report.VerdictMTULow, report.SeverityWarning, report.AreaLine, fmt.Sprintf("Packets larger than %d bytes do not reach the gateway, so the tunnel must use an MTU of %d instead of %d.", m.PathMTU, m.TunnelMTU, defaultTunnelMTU),
				fmt.Sprintf("path MTU %d bytes (DF-set probes echoed by the gateway)", m.PathMTU), fmt.Sprintf("a tunnel MTU of %d (path MTU 1500)", defaultTunnelMTU))
		}
		if v6 := p.IPv6; v6 != nil && !v6.GlobalAddr {
			add(report.VerdictIPv6Missing, report.SeverityInfo, report.AreaLine, "This connection has no IPv6; everything works over IPv4.", "no global IPv6 address on any interface", "a global unicast IPv6 address")
		}
	}

	// Wi-Fi and the LAN, judged by the first hop.
	if n := r.Network; n != nil && n.WiFi != nil && n.WiFi.SignalDBM != nil && *n.WiFi.SignalDBM < wifiWeakDBM {
		add(report.VerdictWiFiWeak, report.SeverityWarning, report.AreaWiFi, "The Wi-Fi signal is weak here, which slows the connection and makes it drop.",
			fmt.Sprintf("signal %d dBm", *n.WiFi.SignalDBM), fmt.Sprintf("%d dBm or stronger", wifiWeakDBM))
	}
	if router != nil && (router.MedianMS > lanHighMS || router.P90MS > lanHighP90MS || router.LossPct > highLossPct) {
		where := "home network"
		if n := r.Network; n != nil && n.Type == "wifi" {
			where = "Wi-Fi"
		}
		add(report.VerdictLANLatencyHigh, report.SeverityWarning, report.AreaLAN, fmt.Sprintf("Your %s itself is slow to answer: the delay starts before the internet does.", where),
			fmt.Sprintf("router %s: median %.1f ms, p90 %.1f ms, loss %.0f%%", router.Addr, router.MedianMS, router.P90MS, router.LossPct),
			fmt.Sprintf("median under %.0f ms, p90 under %.0f ms, loss under %.0f%%", lanHighMS, lanHighP90MS, highLossPct))
	}

	// The line.
	if gw != nil {
		loss, lossEv := gw.LossPct, fmt.Sprintf("%s to the gateway: %.1f%% of %d lost", gw.Method, gw.LossPct, gw.Sent)
		if p := r.Path; p != nil && p.Loss != nil && p.Loss.Sent > 0 && p.Loss.LossPct > loss {
			loss, lossEv = p.Loss.LossPct, fmt.Sprintf("UDP (STAMP) to the gateway: %.1f%% of %d lost", p.Loss.LossPct, p.Loss.Sent)
		}
		if loss > highLossPct {
			add(report.VerdictHighLoss, report.SeverityWarning, report.AreaLine, fmt.Sprintf("%.0f%% of packets to the company gateway are lost, which makes calls choppy.", loss), lossEv, fmt.Sprintf("%.0f%% or less", highLossPct))
		}
	}
	if resp != nil && resp.BufferbloatGrade != "" && gradeRank(resp.BufferbloatGrade) >= gradeRank(bufferbloatGrade) {
		ev := fmt.Sprintf("idle %.0f ms, loaded %.0f ms down / %.0f ms up: grade %s", resp.IdleMS, resp.LoadedDownMS, resp.LoadedUpMS, resp.BufferbloatGrade)
		if max(resp.LoadedDownMS, resp.LoadedUpMS) > videoCallLoadedMS {
			ev += fmt.Sprintf("; over the %.0f ms a call tolerates", videoCallLoadedMS)
		}
		add(report.VerdictBufferbloat, report.SeverityWarning, report.AreaLine, fmt.Sprintf("Delay rises by %.0f ms when the line is busy, so calls stutter while anyone uploads or downloads.", resp.IncreaseMS),
			ev, fmt.Sprintf("grade B or better (increase under %.0f ms)", ms(bufferbloatGrades[2].below)))
	}
	capped := func(v float64) bool { return tp != nil && tp.ServerCapMbps > 0 && v >= 0.9*tp.ServerCapMbps }
	measured := tp != nil && tp.Download != nil && tp.Upload != nil && tp.Download.Error == "" && tp.Upload.Error == ""
	// Saturated means a call cannot be carried now: what is left of the
	// line for a new flow is under a call's rate, or the delay a call
	// meets is over its limit. On a quiet line that delay is the idle
	// one: the delay under Tether's own load is the line's queue, which a
	// call alone does not fill (bufferbloat, below). On a line other
	// traffic already loads, its queue stands before Tether adds any, and
	// a call meets the loaded delay.
	var saturated []string
	if measured {
		if tp.DownloadMbps < videoCallMbps && !capped(tp.DownloadMbps) {
			saturated = append(saturated, fmt.Sprintf("%s down", mbps(tp.DownloadMbps)))
		}
		if tp.UploadMbps < videoCallMbps && !capped(tp.UploadMbps) {
			saturated = append(saturated, fmt.Sprintf("%s up", mbps(tp.UploadMbps)))
		}
	}
	if gw != nil && gw.MedianMS > videoCallIdleMS {
		ev := fmt.Sprintf("%.0f ms to the gateway before any test load (its minimum %.0f ms", gw.MedianMS, gw.MinMS)
		if router != nil {
			ev += fmt.Sprintf("; the router %.1f ms", router.MedianMS)
		}
		saturated = append(saturated, ev+")")
	} else if q := priorQueue(r, gw, router); q >= priorLoadQueueMS && resp != nil && max(resp.LoadedDownMS, resp.LoadedUpMS) > videoCallLoadedMS {
		saturated = append(saturated, fmt.Sprintf("other traffic already keeps a %.0f ms queue on the idle line, and %.0f ms to the gateway once it fills", q, max(resp.LoadedDownMS, resp.LoadedUpMS)))
	}
	if len(saturated) > 0 {
		add(report.VerdictLineSaturated, report.SeverityCritical, report.AreaLine, "This line cannot carry a video call right now.", strings.Join(saturated, ", "),
			fmt.Sprintf("%.0f Mbit/s each way, and under %.0f ms to the gateway with the line idle (Zoom's group HD video needs 3.0 Mbit/s; ITU-T G.114: 150 ms)", videoCallMbps, videoCallIdleMS))
	}
	if measured {
		var slow []string
		if tp.DownloadMbps < slowDownMbps && !capped(tp.DownloadMbps) {
			slow = append(slow, fmt.Sprintf("%s down", mbps(tp.DownloadMbps)))
		}
		if tp.UploadMbps < slowUpMbps && !capped(tp.UploadMbps) {
			slow = append(slow, fmt.Sprintf("%s up", mbps(tp.UploadMbps)))
		}
		if len(slow) > 0 {
			add(report.VerdictLineSlow, report.SeverityWarning, report.AreaLine, "This line is slow: large files and screen sharing will crawl.", strings.Join(slow, ", "),
				fmt.Sprintf("%.0f Mbit/s down and %.0f Mbit/s up (the FCC's 2015 broadband benchmark)", slowDownMbps, slowUpMbps))
		}
	}

	// DNS.
	if d := r.DNS; d != nil {
		judgeDNS(d, expectFiltered, add)
	}

	// The tunnel against the line, when the run compared them.
	if tr := r.Tunnel; tr != nil && tr.Bottleneck == report.BottleneckTunnel {
		add(report.VerdictTunnelOverheadHigh, report.SeverityWarning, report.AreaGateway,
			"The tunnel costs much more than your home line: the slowdown is the tunnel's and the company gateway's.",
			fmt.Sprintf("under load %.0f ms through the tunnel against %.0f ms direct to the gateway (%+.0f ms); %s against %s down, %s against %s up",
				tr.Tunnel.LoadedMS(), tr.Direct.LoadedMS(), tr.OverheadMS, mbps(tr.Tunnel.DownloadMbps), mbps(tr.Direct.DownloadMbps), mbps(tr.Tunnel.UploadMbps), mbps(tr.Direct.UploadMbps)),
			fmt.Sprintf("the tunnel adds at most %.0f ms under load and carries at least %.0f%% of the direct path's throughput each way (where that is %.0f Mbit/s or more)",
				float64(tunnelOverheadMS), 100*tunnelThroughputRatio, tunnelRatioMinMbps))
	}

	// An untrusted network: open Wi-Fi, a captive portal or DNS meddling.
	var why []string
	for _, v := range vs {
		switch v.ID {
		case report.VerdictCaptivePortal:
			why = append(why, "it has a captive portal")
		case report.VerdictDNSHijack:
			why = append(why, "its DNS rewrites answers")
		case report.VerdictDNSIntercepted:
			why = append(why, "it intercepts DNS sent to any server")
		}
	}
	if n := r.Network; n != nil && n.WiFi != nil && n.WiFi.Security == "open" {
		why = append(why, "its Wi-Fi is open (unencrypted)")
	}
	if len(why) > 0 {
		add(report.VerdictUntrustedNetwork, report.SeverityWarning, report.AreaNetwork, "Treat this network as untrusted: "+strings.Join(why, ", and ")+".", strings.Join(why, "; "), "encrypted Wi-Fi, no portal, honest DNS")
	}
	slices.SortStableFunc(vs, func(a, b report.Verdict) int { return b.Severity.Rank() - a.Severity.Rank() })
	linkType := ""
	if n := r.Network; n != nil {
		linkType = n.Type
	}
	return vs, suggest(vs, linkType)
}

// priorQueue estimates the queue other traffic keeps on the line before
// Tether loads it: how far the gateway's idle round trips stand above
// their minimum (by ICMP or the longer STAMP series, whichever shows
// more). Unless the link is known to be a cable, less the same spread at
// the router, which is the Wi-Fi's; on a cable the LAN adds none, and a
// spread at the router is traffic queued in it.
func priorQueue(r *report.Report, gw, router *report.LatencyTarget) float64 {
	if gw == nil {
		return 0
	}
	q := gw.MedianMS - gw.MinMS
	if p := r.Path; p != nil && p.Loss != nil && p.Loss.Sent > 0 && p.Loss.MinMS > 0 {
		q = max(q, p.Loss.MedianMS-p.Loss.MinMS)
	}
	if n := r.Network; router != nil && (n == nil || (n.Type != "ethernet" && n.Type != "virtual")) {
		q -= router.MedianMS - router.MinMS
	}
	return q
}

// addFunc adds a verdict.
type addFunc func(id report.VerdictID, sev report.Severity, area report.Area, summary, evidence, threshold string)

// judgeService adds gateway_unreachable: the gateway's service does not
// answer, whether or not its host does.
func judgeService(r *report.Report, gw *report.LatencyTarget, add addFunc) {
	s := r.Service
	var summary, ev string
	if gw != nil {
		summary = fmt.Sprintf("The gateway host answers (%s) but its service on :%d does not (%s).", shortMS(gw.MedianMS), s.Port, s.Error)
		ev = fmt.Sprintf("%s to %s: median %.1f ms; GET %s: %s", gw.Method, gw.Addr, gw.MedianMS, s.URL, s.Error)
	} else {
		summary = fmt.Sprintf("The company gateway does not answer: neither its host nor its service on :%d (%s).", s.Port, s.Error)
		ev = fmt.Sprintf("no answer to ICMP, STAMP or TCP; GET %s: %s", s.URL, s.Error)
	}
	if p := r.Path; p != nil && p.UDP != nil {
		if p.UDP.Reachable {
			ev += fmt.Sprintf("; its WireGuard port %d answers", p.UDP.Port)
		} else {
			ev += fmt.Sprintf("; its WireGuard port %d does not answer either", p.UDP.Port)
		}
	}
	add(report.VerdictGatewayUnreachable, report.SeverityCritical, report.AreaGateway, summary, ev,
		fmt.Sprintf("an HTTP answer below 500 from %s within %v", pathHealth, serviceTimeout))
}

// shortMS writes a small latency with one decimal, a larger one whole.
func shortMS(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// resolverTrouble says why a resolver does not work for lookups, or "".
func resolverTrouble(r report.ResolverReport) string {
	udpOK := r.UDP != nil && *r.UDP
	tcpOK := r.TCP != nil && *r.TCP
	switch {
	case (!udpOK && !tcpOK) || (r.Sent > 0 && r.LossPct >= dnsBrokenLossPct):
		return fmt.Sprintf("%s: %.0f%% of %d queries unanswered, TCP %s", r.Addr, r.LossPct, r.Sent, okWord(tcpOK))
	case r.Resolves != nil && !*r.Resolves:
		// It answers, but not with an address: a refusal is no lookup.
		return fmt.Sprintf("%s answers %s", r.Addr, r.ProbeAnswer)
	}
	return ""
}

// judgeDNS adds the DNS verdicts. Only system resolvers are judged for
// slowness and breakage: they are what applications use; the company's
// resolver gets verdicts of its own.
func judgeDNS(d *report.DNSReport, expectFiltered bool, add addFunc) {
	var slow, broken, hijack []string
	system, working := 0, 0
	companyTrouble := ""
	for _, r := range d.Resolvers {
		if r.AnswerFrom != "" || r.NXDOMAIN == "rewritten" {
			ev := r.Addr
			if r.NXDOMAIN == "rewritten" {
				ev += fmt.Sprintf(" answers a name that does not exist with %s", strings.Join(r.RewrittenTo, ", "))
			}
			if r.AnswerFrom != "" {
				ev += fmt.Sprintf(" answers from %s instead", r.AnswerFrom)
			}
			hijack = append(hijack, ev)
		}
		if r.Role == "company" && r.Addr != "" {
			companyTrouble = resolverTrouble(r)
		}
		if r.Role != "system" {
			continue
		}
		system++
		if t := resolverTrouble(r); t != "" {
			broken = append(broken, t)
			continue
		}
		working++
		if r.Samples > 0 && r.MedianMS > dnsSlowMS {
			slow = append(slow, fmt.Sprintf("%s: median %.0f ms, p90 %.0f ms", r.Addr, r.MedianMS, r.P90MS))
		}
	}
	if len(broken) > 0 {
		sev, summary := report.SeverityWarning, "One of your DNS servers does not answer, so some page loads stall."
		if working == 0 {
			sev, summary = report.SeverityCritical, "DNS does not work on this network: names do not resolve, so almost nothing loads."
		}
		add(report.VerdictDNSBroken, sev, report.AreaDNS, summary, strings.Join(broken, "; "),
			fmt.Sprintf("answers over UDP or TCP, under %.0f%% of queries lost, and an address for a name that must resolve", dnsBrokenLossPct))
	}
	if companyTrouble != "" {
		add(report.VerdictDNSCompanyBroken, report.SeverityCritical, report.AreaDNS, "The company's DNS server does not resolve names, so its filter protects no one and company names fail.",
			companyTrouble, fmt.Sprintf("answers over UDP or TCP, under %.0f%% of queries lost, and an address for a name that must resolve", dnsBrokenLossPct))
	}
	if len(slow) > 0 {
		add(report.VerdictDNSSlow, report.SeverityWarning, report.AreaDNS, "Your DNS server is slow, which delays the start of every page and connection.", strings.Join(slow, "; "),
			fmt.Sprintf("median under %.0f ms (Google's RAIL model: 100 ms feels instant)", dnsSlowMS))
	}
	if len(hijack) > 0 {
		add(report.VerdictDNSHijack, report.SeverityWarning, report.AreaDNS, "This network's DNS rewrites answers: mistyped names lead to someone else's page, and the network sees every name you look up.",
			strings.Join(hijack, "; "), "NXDOMAIN for a name that cannot exist, from the server asked")
	}
	ic := d.Interception
	if ic != nil && ic.Intercepted {
		var ev []string
		for _, p := range ic.Probes {
			if p.Answered {
				ev = append(ev, fmt.Sprintf("%s, where no DNS server can be, answered %s in %.1f ms", p.Addr, p.Answer, p.RTTMS))
			}
		}
		add(report.VerdictDNSIntercepted, report.SeverityWarning, report.AreaDNS, "Something on this network answers DNS sent to any server: it intercepts every lookup, so the DNS servers you chose are not the ones answering.",
			strings.Join(ev, "; "), "no answer from documentation addresses (RFC 5737, RFC 3849), where no DNS server can be")
	}
	f := d.Filter
	if f == nil {
		return
	}
	// A resolver that cannot resolve the control name is broken
	// (dns_company_broken), and its canary answer says nothing more.
	controlFails := f.ControlResolves != nil && !*f.ControlResolves
	if f.CompanyBlocks != nil && !*f.CompanyBlocks && !controlFails {
		summary := "The company's phishing and malware filter is not in effect: its resolver does not block a name it must block."
		ev := fmt.Sprintf("%s: the company resolver answered %s, which is no block", f.Canary, f.CompanyAnswer)
		if ic != nil && ic.Intercepted {
			summary = "The company's phishing and malware filter is not in effect: this network intercepts DNS, so lookups may never reach the company's resolver."
			ev += "; this network intercepts DNS, so the answer may not be the company resolver's"
		}
		add(report.VerdictDNSFilterOff, report.SeverityCritical, report.AreaDNS, summary,
			ev, "a block for the canary: EDE 15-17, or NXDOMAIN or 0.0.0.0 the resolver made up (a SOA of the name itself, or none), while a control name resolves")
	}
	if expectFiltered && f.CompanyBlocks != nil && *f.CompanyBlocks && len(f.BypassedBy) > 0 {
		add(report.VerdictDNSFilterBypassed, report.SeverityWarning, report.AreaDNS, "The company's phishing and malware filter does not protect lookups made through this network's DNS.",
			fmt.Sprintf("%s is blocked by the company resolver but resolved by %s", f.Canary, strings.Join(f.BypassedBy, ", ")), "every resolver in use blocks what the company's blocks")
	}
}

func okWord(ok bool) string {
	if ok {
		return "works"
	}
	return "fails"
}

// suggest turns verdicts into actions a person can take, most useful
// first; the tunnel's mode is the client's policy, decided from the
// verdicts, so no suggestion names one. linkType is the default route's
// (report.NetworkReport.Type, empty when unknown): on a wired link a slow
// first hop is the router or traffic through it, so moving closer cannot
// help; on a mobile one a hotspot is what is in use.
func suggest(vs []report.Verdict, linkType string) []report.Suggestion {
	wired := linkType == "ethernet" || linkType == "virtual"
	mobile := linkType == "cellular" || linkType == "tethered"
	has := map[report.VerdictID]bool{}
	for _, v := range vs {
		has[v.ID] = true
	}
	var out []report.Suggestion
	s := func(id report.SuggestionID, summary string, because ...report.VerdictID) {
		var b []report.VerdictID
		for _, c := range because {
			if has[c] {
				b = append(b, c)
			}
		}
		if len(b) > 0 {
			out = append(out, report.Suggestion{ID: id, Summary: summary, Because: b})
		}
	}
	s(report.SuggestionSignInToPortal, "Open a browser and sign in to this network's portal, then run the check again.", report.VerdictCaptivePortal)
	// Not for bufferbloat alone (enable_sqm is the cure), nor for a line
	// that is only slow: it still carries a call (line_saturated says
	// when it cannot).
	if !mobile {
		s(report.SuggestionUseHotspot, "Switch to your phone's mobile hotspot for calls and work: this line cannot keep up.", report.VerdictLineSaturated, report.VerdictUDPBlocked, report.VerdictHighLoss)
	}
	if wired {
		s(report.SuggestionMoveCloserToRouter, "Move closer to the Wi-Fi router, or connect with a cable.", report.VerdictWiFiWeak)
		s(report.SuggestionCheckRouter, "Restart your router. If it stays slow, another device may be filling its queue (a backup, a game download), or the router is failing.", report.VerdictLANLatencyHigh)
	} else {
		s(report.SuggestionMoveCloserToRouter, "Move closer to the Wi-Fi router, or connect with a cable.", report.VerdictWiFiWeak, report.VerdictLANLatencyHigh)
	}
	s(report.SuggestionEnableSQM, "Turn on Smart Queue Management (SQM, or fq_codel/cake) on your router, or pause large uploads and downloads during calls.", report.VerdictBufferbloat)
	s(report.SuggestionSetTunnelMTU, "Lower the tunnel MTU as recommended; Tether does this itself in tunnel mode.", report.VerdictMTULow)
	s(report.SuggestionUseCompanyDNS, "Use the company's DNS through the tunnel instead of this network's.", report.VerdictDNSSlow, report.VerdictDNSBroken)
	s(report.SuggestionContactHelpdesk, "Tell your helpdesk what this report says: the company's side is not working as it should, and nothing on your line can fix it.",
		report.VerdictGatewayUnreachable, report.VerdictDNSCompanyBroken, report.VerdictDNSFilterOff, report.VerdictTunnelOverheadHigh)
	return out
}

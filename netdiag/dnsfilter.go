package netdiag

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/tetherwfh/tether/netdiag/report"
)

// What marks an answer as a block (report.FilterReport.BlockMarker). A
// block is an answer that says it is one; an empty answer, a refusal or
// an ordinary NXDOMAIN says nothing of the kind.
const (
	// markerEDE: an RFC 8914 Extended DNS Error 15 (Blocked), 16
	// (Censored) or 17 (Filtered), whatever the rcode. Tether's resolver
	// sends 15 or 17 to every EDNS client; CoreDNS's acl and Cloudflare's
	// filtering resolvers send them too.
	markerEDE = "ede"
	// markerSynthesizedSOA: NXDOMAIN with a SOA owned by the queried name
	// itself. A name that does not exist cannot own its zone's SOA, so the
	// resolver made the answer up: Tether's resolver (and AdGuard) do so
	// that blocks are cached (RFC 2308).
	markerSynthesizedSOA = "synthesized_soa"
	// markerNoSOA: NXDOMAIN with no SOA at all. An authoritative server
	// must send its zone's SOA with NXDOMAIN (RFC 2308 §3), and resolvers
	// pass it on; a filter that blocks by rcode alone (Quad9) does not.
	// Weak: a broken resolver answers like this for every name, so it
	// counts only when the control name resolves.
	markerNoSOA = "no_soa"
	// markerUnspecified: the address 0.0.0.0 or ::, the sinkhole of hosts
	// files and Pi-hole. Weak, like markerNoSOA.
	markerUnspecified = "unspecified_address"
)

// maxEDEText bounds how much of a resolver's EDE text the report quotes.
const maxEDEText = 160

// canaryAnswer is one resolver's answer for the blocked canary, read.
type canaryAnswer struct {
	// blocked: the answer says it is a block; false: an ordinary answer;
	// nil: no usable answer (no reply, a refusal, a server failure).
	blocked *bool
	marker  string   // what made it a block
	addrs   []string // the answer's A and AAAA, sorted
	text    string   // the answer in words, for evidence
}

// resolved reports a resolver that hands out the canary's addresses.
func (a canaryAnswer) resolved() bool {
	return a.blocked != nil && !*a.blocked && len(a.addrs) > 0
}

// weak reports a block that only the answer's shape speaks for.
func (a canaryAnswer) weak() bool { return a.marker == markerNoSOA || a.marker == markerUnspecified }

// classifyCanary reads the answer for the canary name: a block when it
// says so (see the markers above), an ordinary answer otherwise, unknown
// for a rcode that is neither an answer nor NXDOMAIN (REFUSED, SERVFAIL):
// a resolver that refuses every name blocks nothing.
func classifyCanary(resp *dns.Msg, name string) canaryAnswer {
	a := canaryAnswer{addrs: addrsOf(resp), text: describeAnswer(resp)}
	block := func(marker string) canaryAnswer { a.blocked, a.marker = yes(true), marker; return a }
	if blockEDE(resp) != nil {
		return block(markerEDE)
	}
	switch resp.Rcode {
	case dns.RcodeNameError:
		soa := authoritySOA(resp)
		switch {
		case soa == nil:
			return block(markerNoSOA)
		case strings.EqualFold(dns.Fqdn(soa.Hdr.Name), dns.Fqdn(name)):
			return block(markerSynthesizedSOA)
		}
		a.blocked = yes(false) // the zone says the name does not exist: no filter spoke
		return a
	case dns.RcodeSuccess:
		for _, s := range a.addrs {
			if ip, err := netip.ParseAddr(s); err == nil && ip.IsUnspecified() {
				return block(markerUnspecified)
			}
		}
		a.blocked = yes(false)
		return a
	}
	return a
}

// filterReport judges the company resolver's canary answer against the
// control name: a weak block marker from a resolver that cannot resolve
// the control proves nothing.
func filterReport(cfg DNSConfig, company canaryAnswer, controlResolves *bool) *report.FilterReport {
	f := &report.FilterReport{Canary: strings.TrimSuffix(cfg.BlockedCanary, "."), CompanyBlocks: company.blocked, CompanyAnswer: company.text,
		BlockMarker: company.marker, Control: strings.TrimSuffix(cfg.ProbeName, "."), ControlResolves: controlResolves}
	if company.weak() && (controlResolves == nil || !*controlResolves) {
		f.CompanyBlocks = nil
	}
	return f
}

// blockEDE is the answer's blocking Extended DNS Error, if any.
func blockEDE(m *dns.Msg) *dns.EDNS0_EDE {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok && (e.InfoCode == dns.ExtendedErrorCodeBlocked || e.InfoCode == dns.ExtendedErrorCodeCensored || e.InfoCode == dns.ExtendedErrorCodeFiltered) {
			return e
		}
	}
	return nil
}

// authoritySOA is the first SOA in the authority section.
func authoritySOA(m *dns.Msg) *dns.SOA {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// describeAnswer writes an answer for a person: its rcode, addresses,
// any EDE (its text quoted, so a resolver's bytes never reach a terminal
// raw) and the owner of the authority's SOA.
func describeAnswer(m *dns.Msg) string {
	rc, ok := dns.RcodeToString[m.Rcode]
	if !ok {
		rc = "rcode " + strconv.Itoa(m.Rcode)
	}
	parts := []string{rc}
	if a := addrsOf(m); len(a) > 0 {
		parts[0] += " " + strings.Join(a, ", ")
	}
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				text := e.ExtraText
				if len(text) > maxEDEText {
					text = text[:maxEDEText] + "…"
				}
				parts = append(parts, fmt.Sprintf("EDE %d %s", e.InfoCode, strconv.QuoteToASCII(text)))
			}
		}
	}
	if soa := authoritySOA(m); soa != nil {
		parts = append(parts, "SOA of "+strconv.QuoteToASCII(soa.Hdr.Name))
	}
	return strings.Join(parts, ", ")
}

package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/tetherwfh/tether/internal/termsafe"
)

// Part is a section of a rendered report.
type Part uint

// The sections, in the order Render writes them.
const (
	// PartHeadline is the sentence that matters (Report.Summary).
	PartHeadline Part = 1 << iota
	// PartTitle says what the run measured against, how and how long.
	PartTitle
	// PartFindings is the verdicts, grouped by area (see Findings).
	PartFindings
	// PartActions is "what to do": the suggestions.
	PartActions
	// PartFigures is the measurements behind them: latency, throughput
	// and delay under load, DNS, the gateway's service, the path and the
	// local network.
	PartFigures
	// PartErrors is what could not be measured, and why.
	PartErrors

	// PartAll is every section, as `tether diag` prints them.
	PartAll = PartHeadline | PartTitle | PartFindings | PartActions | PartFigures | PartErrors
)

// Options choose what Render writes. The zero value writes every
// section, unindented.
type Options struct {
	// Parts selects the sections; zero means PartAll.
	Parts Part
	// Indent is written before every line that is not empty, to nest the
	// report in other output; empty means none.
	Indent string
}

// Render writes r as text for a person, on a terminal or in a log: the
// sections opts selects, in the order of the Part constants, with an
// empty line between blocks. A section with nothing to say is left out.
// Every string that came from the network or the report is escaped
// (internal/termsafe), so no answer, name or error in it can move the
// cursor, clear the screen or break a line. Render returns the first
// error from w.
func Render(w io.Writer, r *Report, opts Options) error {
	parts := opts.Parts
	if parts == 0 {
		parts = PartAll
	}
	var blocks [][]string
	add := func(p Part, f func(*Report) [][]string) {
		if parts&p != 0 {
			blocks = append(blocks, f(r)...)
		}
	}
	add(PartHeadline, func(r *Report) [][]string { return [][]string{{safe(r.Summary)}} })
	add(PartTitle, titleBlock)
	add(PartFindings, findingsBlock)
	add(PartActions, actionsBlock)
	add(PartFigures, figureBlocks)
	add(PartErrors, errorsBlock)

	var b strings.Builder
	first := true
	for _, lines := range blocks {
		if len(lines) == 0 {
			continue
		}
		if !first {
			b.WriteString("\n")
		}
		first = false
		for _, l := range lines {
			if l != "" {
				b.WriteString(opts.Indent)
			}
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// AreaFindings are the verdicts in one area.
type AreaFindings struct {
	Area Area
	// Verdicts are the area's, in the report's order (most severe first).
	Verdicts []Verdict
}

// Findings groups the report's verdicts by area, in the order of Areas;
// areas without a verdict are left out, and so are verdicts of an area
// Areas does not know. It is the grouping Render's findings use, for
// views that draw their own (the tray's cards, the helpdesk's page).
func Findings(r *Report) []AreaFindings {
	var out []AreaFindings
	for _, a := range Areas() {
		var vs []Verdict
		for _, v := range r.Verdicts {
			if v.Area == a {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			out = append(out, AreaFindings{Area: a, Verdicts: vs})
		}
	}
	return out
}

// safe escapes a string from the report for a terminal.
func safe(s string) string { return termsafe.String(s) }

// safeAll escapes each string of ss.
func safeAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = safe(s)
	}
	return out
}

// linef formats one line.
func linef(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func titleBlock(r *Report) [][]string {
	return [][]string{{linef("Line diagnostics against %s (%s run, %.1f s)", safe(r.Server), safe(string(r.Mode)), float64(r.DurationMS)/1000)}}
}

func findingsBlock(r *Report) [][]string {
	groups := Findings(r)
	if len(groups) == 0 {
		return nil
	}
	lines := []string{"Findings"}
	for _, g := range groups {
		lines = append(lines, "  "+g.Area.Title())
		for _, v := range g.Verdicts {
			lines = append(lines,
				linef("    %-8s %s", safe(strings.ToUpper(string(v.Severity))), safe(v.Summary)),
				"             measured: "+safe(v.Evidence),
				"             limit:    "+safe(v.Threshold))
		}
	}
	return [][]string{lines}
}

func actionsBlock(r *Report) [][]string {
	if len(r.Suggestions) == 0 {
		return nil
	}
	lines := []string{"What to do"}
	for _, s := range r.Suggestions {
		lines = append(lines, "  - "+safe(s.Summary))
	}
	return [][]string{lines}
}

func errorsBlock(r *Report) [][]string {
	var lines []string
	for _, e := range r.Errors {
		lines = append(lines, linef("! %s: %s", safe(e.Probe), safe(e.Error)))
	}
	return [][]string{lines}
}

// figureBlocks are the measurements: the latency table, throughput and
// delay under load, DNS, then the service, the path and the network.
func figureBlocks(r *Report) [][]string {
	lat := []string{linef("%-10s %-16s %-6s %8s %8s %8s %8s %7s", "latency", "address", "method", "min", "median", "p90", "jitter", "loss")}
	for _, t := range r.Latency.Targets {
		if t.Method == MethodNone {
			lat = append(lat, linef("%-10s %-16s %-6s no answer", safe(t.Name), safe(t.Addr), safe(t.Method)))
			continue
		}
		lat = append(lat, linef("%-10s %-16s %-6s %6.1fms %6.1fms %6.1fms %6.1fms %6.1f%%",
			safe(t.Name), safe(t.Addr), safe(t.Method), t.MinMS, t.MedianMS, t.P90MS, t.JitterMS, t.LossPct))
	}
	return [][]string{lat, loadLines(r), uplinkLines(r.Uplinks), tunnelLines(r.Tunnel), dnsLines(r.DNS), pathLines(r.Service, r.Path, r.Network)}
}

// uplinkLines set the uplinks side by side, then the recommendation.
func uplinkLines(u *UplinksReport) []string {
	if u == nil {
		return nil
	}
	lines := []string{figuresHeader("uplinks")}
	for _, r := range u.Uplinks {
		name := safe(r.Label)
		if r.Default {
			name += " *"
		}
		lines = append(lines, figuresRow(name, PathResult{IdleMS: r.IdleMS, IncreaseMS: r.IncreaseMS,
			DownloadMbps: r.DownloadMbps, UploadMbps: r.UploadMbps, RPM: r.RPM, Error: r.Error}))
	}
	return append(lines, "(* in use now)", safe(u.Recommendation))
}

// tunnelLines set the path beside the tunnel and inside it side by
// side, then whose the slowdown is.
func tunnelLines(t *TunnelReport) []string {
	if t == nil {
		return nil
	}
	return []string{figuresHeader("to the gateway"), figuresRow("direct", t.Direct),
		figuresRow("through the tunnel", t.Tunnel), safe(t.Summary)}
}

// figuresHeader and figuresRow make the table both comparisons print:
// one row per uplink or path, or why it could not be measured.
func figuresHeader(title string) string {
	return linef("%-22s %10s %10s %8s %11s %6s", title, "down", "up", "idle", "under load", "RPM")
}

func figuresRow(name string, r PathResult) string {
	if r.Error != "" {
		return linef("%-22s %s", name, safe(r.Error))
	}
	return linef("%-22s %5.1fMbit/s %5.1fMbit/s %6.1fms %+9.0fms %6d", name, r.DownloadMbps, r.UploadMbps, r.IdleMS, r.IncreaseMS, r.RPM)
}

// loadLines are throughput and the delay while the line is loaded.
func loadLines(r *Report) []string {
	var lines []string
	if tp := r.Throughput; tp != nil {
		notes := ""
		if !tp.Stable {
			notes = " (not stable within the time budget: may read low)"
		}
		if tp.ServerCapMbps > 0 {
			notes += linef(" (the gateway caps tests at %.0f Mbit/s)", tp.ServerCapMbps)
		}
		lines = append(lines, linef("throughput  download %.1f Mbit/s, upload %.1f Mbit/s, up to %d streams, %.1f MB moved%s",
			tp.DownloadMbps, tp.UploadMbps, tp.Streams, float64(tp.Bytes)/1e6, notes))
	}
	if rs := r.Responsiveness; rs != nil && (rs.LoadedDownMS > 0 || rs.LoadedUpMS > 0) {
		lines = append(lines,
			linef("under load  idle %.1f ms, downloading %.1f ms, uploading %.1f ms (%s)", rs.IdleMS, rs.LoadedDownMS, rs.LoadedUpMS, safe(rs.Method)),
			linef("            bufferbloat grade %s (+%.0f ms), responsiveness %d RPM", safe(rs.BufferbloatGrade), rs.IncreaseMS, rs.RPM))
	}
	return lines
}

// tri writes a fact that may be unknown.
func tri(v *bool) string {
	switch {
	case v == nil:
		return "?"
	case *v:
		return "yes"
	}
	return "NO"
}

func dnsLines(d *DNSReport) []string {
	if d == nil || len(d.Resolvers) == 0 {
		return nil
	}
	lines := []string{linef("%-22s %-8s %8s %8s %6s %4s %4s %5s %-9s %-10s %s", "dns", "role", "median", "p90", "loss", "udp", "tcp", "edns", "nxdomain", "truncation", "notes")}
	for _, r := range d.Resolvers {
		if r.Addr == "" {
			lines = append(lines, linef("%-22s %s", "(none found)", safe(r.Error)))
			continue
		}
		var notes []string
		if r.NSID != "" {
			notes = append(notes, "nsid "+safe(r.NSID))
		}
		if r.AD != nil {
			notes = append(notes, "dnssec "+tri(r.AD))
		}
		if r.AnswerFrom != "" {
			notes = append(notes, "answers from "+safe(r.AnswerFrom))
		}
		if len(r.RewrittenTo) > 0 {
			notes = append(notes, "rewrites to "+strings.Join(safeAll(r.RewrittenTo), ","))
		}
		lines = append(lines, linef("%-22s %-8s %6.1fms %6.1fms %5.0f%% %4s %4s %5s %-9s %-10s %s", safe(r.Addr), safe(r.Role), r.MedianMS, r.P90MS, r.LossPct,
			tri(r.UDP), tri(r.TCP), tri(r.EDNS), safe(r.NXDOMAIN), safe(r.Truncation), strings.Join(notes, "; ")))
	}
	if f := d.Filter; f != nil {
		l := linef("filter      %s: company resolver blocks it: %s", safe(f.Canary), tri(f.CompanyBlocks))
		if f.CompanyAnswer != "" {
			l += " (" + safe(f.CompanyAnswer)
			if f.BlockMarker != "" {
				l += "; marked by " + safe(f.BlockMarker)
			}
			l += ")"
		}
		if f.ControlResolves != nil && !*f.ControlResolves {
			l += linef("; it does not resolve %s either", safe(f.Control))
		}
		if len(f.BypassedBy) > 0 {
			l += "; resolved anyway by " + strings.Join(safeAll(f.BypassedBy), ", ")
		}
		lines = append(lines, l)
	}
	if ic := d.Interception; ic != nil {
		var answered []string
		for _, p := range ic.Probes {
			if p.Answered {
				answered = append(answered, linef("%s answered %s in %.1f ms", safe(p.Addr), safe(p.Answer), p.RTTMS))
			}
		}
		if ic.Intercepted {
			lines = append(lines, "intercept   YES: "+strings.Join(answered, "; "))
		} else {
			lines = append(lines, linef("intercept   none (%d addresses with no DNS server stayed silent)", len(ic.Probes)))
		}
	}
	if c := d.Consistency; c != nil {
		for _, x := range c.Differs {
			lines = append(lines, linef("consistency %s: %s answers %v, the company resolver %v", safe(c.Name), safe(x.Resolver), safeAll(x.Answers), safeAll(c.Company)))
		}
	}
	return lines
}

func pathLines(s *ServiceReport, p *PathReport, n *NetworkReport) []string {
	var lines []string
	if s != nil {
		if s.Answers {
			lines = append(lines, linef("service     %s answered %d in %.1f ms", safe(s.URL), s.Status, s.RTTMS))
		} else {
			lines = append(lines, linef("service     %s does NOT answer: %s", safe(s.URL), safe(s.Error)))
		}
	}
	if p != nil {
		if u := p.UDP; u != nil {
			if u.Reachable {
				lines = append(lines, linef("udp         port %d reachable (%.1f ms)", u.Port, u.RTTMS))
			} else {
				lines = append(lines, linef("udp         port %d NOT reachable: %s", u.Port, safe(u.Error)))
			}
		}
		if l := p.Loss; l != nil {
			lines = append(lines, linef("udp loss    %.1f%% of %d %s probes (median %.1f ms)", l.LossPct, l.Sent, safe(l.Method), l.MedianMS))
		}
		if m := p.MTU; m != nil {
			if m.Error != "" {
				lines = append(lines, "mtu         unknown: "+safe(m.Error))
			} else {
				lines = append(lines, linef("mtu         path %d, tunnel MTU %d", m.PathMTU, m.TunnelMTU))
			}
		}
		if c := p.Captive; c != nil {
			switch {
			case c.Error != "":
				lines = append(lines, "portal      unknown: "+safe(c.Error))
			case c.Captive:
				lines = append(lines, linef("portal      YES (%d, to %s)", c.Status, safe(c.RedirectTo)))
			default:
				lines = append(lines, "portal      none")
			}
		}
		if pa := p.Public; pa != nil && pa.Error == "" {
			nat := ""
			if pa.NAT {
				nat = " behind NAT (local " + safe(pa.Local) + ")"
			}
			if pa.CGNAT {
				nat += ", carrier-grade NAT"
			}
			lines = append(lines, linef("public      %s%s", safe(pa.Addr), nat))
		}
		if v6 := p.IPv6; v6 != nil {
			lines = append(lines, linef("ipv6        global address: %s, gateway over IPv6: %s", tri(&v6.GlobalAddr), tri(v6.GatewayReachable)))
		}
	}
	if n != nil {
		l := linef("interface   %s (%s)", safe(n.Interface), safe(n.Type))
		if w := n.WiFi; w != nil {
			if w.SignalDBM != nil {
				l += linef(", signal %d dBm", *w.SignalDBM)
			}
			if w.Security != "" {
				l += ", " + safe(w.Security)
			}
		}
		lines = append(lines, l)
	}
	return lines
}

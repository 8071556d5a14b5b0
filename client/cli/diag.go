package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tetherwfh/tether/client"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
)

// defaultDaemonConfig is where diag looks for the gateway when --server is
// not given.
const defaultDaemonConfig = "/etc/tether/tetherd.yaml"

func runDiag(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "diag")
	quick := fs.Bool("quick", false, "idle latency only: no load on the line, done within 2 s")
	asJSON := fs.Bool("json", false, "print the report as JSON (schema tether.report/v1)")
	var anchors anchorFlag
	fs.Var(&anchors, "anchor", "another latency target, NAME=IP or NAME=IP:TCPPORT (repeatable)")
	stampPort := fs.Uint("stamp-port", 862, "the gateway's STAMP reflector port (UDP latency when ICMP is blocked)")
	server := fs.String("server", "", "measurement server (the gateway's API URL); default: the gateway in "+defaultDaemonConfig)
	pin := fs.String("pin", "", "trust an https server's self-signed certificate by this fingerprint (sha256:…)")
	wgPort := fs.Uint("wg-port", 0, "the gateway's WireGuard UDP port, to check that UDP gets through (0: skip)")
	captiveURL := fs.String("captive-url", "", "a plain-HTTP URL that answers 204, for the captive-portal check (default: the server's /generate_204 when it is http://)")
	companyDNS := fs.String("company-dns", "", "the company's filtering resolver, IP or IP:PORT, to check it and compare answers")
	canary := fs.String("canary", "", "a name the company resolver must block, to check that the filter holds")
	checkDNS := fs.Bool("dns", true, "check DNS health (--dns=false skips the DNS checks)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *server == "" {
		cfg, err := client.LoadConfig(defaultDaemonConfig)
		if err != nil {
			return fmt.Errorf("no --server given and %w", err)
		}
		*server, *pin = cfg.Gateway, cfg.GatewayPin
	}
	tc, err := gwapi.PinnedTLS(*pin)
	if err != nil {
		fmt.Fprintf(env.Stderr, "tether diag: --pin: %v\n", err)
		return errUsage
	}
	mode := report.ModeFull
	if *quick {
		mode = report.ModeQuick
	}
	if *stampPort == 0 || *stampPort > 65535 {
		fmt.Fprintf(env.Stderr, "tether diag: --stamp-port must be from 1 to 65535\n")
		return errUsage
	}
	if *wgPort > 65535 {
		fmt.Fprintf(env.Stderr, "tether diag: --wg-port must be from 0 to 65535\n")
		return errUsage
	}
	cfg := netdiag.Config{Server: *server, STAMPPort: uint16(*stampPort), Anchors: anchors, TLS: tc,
		WireGuardPort: uint16(*wgPort), CaptiveURL: *captiveURL, DNS: netdiag.DNSConfig{Off: !*checkDNS, BlockedCanary: *canary}}
	if cfg.CaptiveURL == "" && strings.HasPrefix(*server, "http://") {
		cfg.CaptiveURL = strings.TrimSuffix(*server, "/") + "/generate_204"
	}
	if *companyDNS != "" {
		ap, err := netip.ParseAddrPort(*companyDNS)
		if err != nil {
			a, aerr := netip.ParseAddr(*companyDNS)
			if aerr != nil {
				fmt.Fprintf(env.Stderr, "tether diag: --company-dns %q is not IP or IP:PORT\n", *companyDNS)
				return errUsage
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		cfg.DNS.Company = ap
	}
	if !*asJSON {
		cfg.Progress = progressPrinter(env.Stderr)
	}
	c, err := netdiag.New(cfg)
	if err != nil {
		return err
	}
	rep := c.Run(ctx, mode)
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = io.WriteString(env.Stdout, FormatReport(rep))
	return err
}

// progressPrinter shows a one-line progress display on w.
func progressPrinter(w io.Writer) func(netdiag.Progress) {
	return func(p netdiag.Progress) {
		switch p.Phase {
		case "latency":
			fmt.Fprint(w, "measuring latency…\n")
		case "download", "upload":
			fmt.Fprintf(w, "\r%-8s %8.1f Mbit/s  %2d streams  %4.1fs ", p.Phase, p.Mbps, p.Streams, p.Elapsed.Seconds())
		case "done":
			fmt.Fprintf(w, "\rdone in %.1fs%s\n", p.Elapsed.Seconds(), strings.Repeat(" ", 30))
		}
	}
}

// FormatReport renders a diagnostics report for a person: the sentence
// that matters first, then the findings grouped by where the problem is,
// what to do, and the measurements behind them.
func FormatReport(r *report.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", r.Summary)
	fmt.Fprintf(&b, "Line diagnostics against %s (%s run, %.1f s)\n", r.Server, r.Mode, float64(r.DurationMS)/1000)
	if len(r.Verdicts) > 0 {
		b.WriteString("\nFindings\n")
		for _, area := range report.Areas() {
			first := true
			for _, v := range r.Verdicts {
				if v.Area != area {
					continue
				}
				if first {
					fmt.Fprintf(&b, "  %s\n", area.Title())
					first = false
				}
				fmt.Fprintf(&b, "    %-8s %s\n", strings.ToUpper(string(v.Severity)), v.Summary)
				fmt.Fprintf(&b, "             measured: %s\n             limit:    %s\n", v.Evidence, v.Threshold)
			}
		}
	}
	if len(r.Suggestions) > 0 {
		b.WriteString("\nWhat to do\n")
		for _, sg := range r.Suggestions {
			fmt.Fprintf(&b, "  - %s\n", sg.Summary)
		}
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-10s %-16s %-6s %8s %8s %8s %8s %7s\n", "latency", "address", "method", "min", "median", "p90", "jitter", "loss")
	for _, t := range r.Latency.Targets {
		if t.Method == report.MethodNone {
			fmt.Fprintf(&b, "%-10s %-16s %-6s no answer\n", t.Name, t.Addr, t.Method)
			continue
		}
		fmt.Fprintf(&b, "%-10s %-16s %-6s %6.1fms %6.1fms %6.1fms %6.1fms %6.1f%%\n",
			t.Name, t.Addr, t.Method, t.MinMS, t.MedianMS, t.P90MS, t.JitterMS, t.LossPct)
	}
	if tp := r.Throughput; tp != nil {
		stable := ""
		if !tp.Stable {
			stable = " (not stable within the time budget: may read low)"
		}
		if tp.ServerCapMbps > 0 {
			stable += fmt.Sprintf(" (the gateway caps tests at %.0f Mbit/s)", tp.ServerCapMbps)
		}
		fmt.Fprintf(&b, "\nthroughput  download %.1f Mbit/s, upload %.1f Mbit/s, up to %d streams, %.1f MB moved%s\n",
			tp.DownloadMbps, tp.UploadMbps, tp.Streams, float64(tp.Bytes)/1e6, stable)
	}
	if rs := r.Responsiveness; rs != nil && (rs.LoadedDownMS > 0 || rs.LoadedUpMS > 0) {
		fmt.Fprintf(&b, "under load  idle %.1f ms, downloading %.1f ms, uploading %.1f ms (%s)\n", rs.IdleMS, rs.LoadedDownMS, rs.LoadedUpMS, rs.Method)
		fmt.Fprintf(&b, "            bufferbloat grade %s (+%.0f ms), responsiveness %d RPM\n", rs.BufferbloatGrade, rs.IncreaseMS, rs.RPM)
	}
	formatDNS(&b, r.DNS)
	formatPath(&b, r.Service, r.Path, r.Network)
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n! %s: %s", e.Probe, e.Error)
	}
	if len(r.Errors) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func tri(v *bool) string {
	switch {
	case v == nil:
		return "?"
	case *v:
		return "yes"
	}
	return "NO"
}

func formatDNS(b *strings.Builder, d *report.DNSReport) {
	if d == nil || len(d.Resolvers) == 0 {
		return
	}
	fmt.Fprintf(b, "\n%-22s %-8s %8s %8s %6s %4s %4s %5s %-9s %-10s %s\n", "dns", "role", "median", "p90", "loss", "udp", "tcp", "edns", "nxdomain", "truncation", "notes")
	for _, r := range d.Resolvers {
		if r.Addr == "" {
			fmt.Fprintf(b, "%-22s %s\n", "(none found)", r.Error)
			continue
		}
		var notes []string
		if r.NSID != "" {
			notes = append(notes, "nsid "+r.NSID)
		}
		if r.AD != nil {
			notes = append(notes, "dnssec "+tri(r.AD))
		}
		if r.AnswerFrom != "" {
			notes = append(notes, "answers from "+r.AnswerFrom)
		}
		if len(r.RewrittenTo) > 0 {
			notes = append(notes, "rewrites to "+strings.Join(r.RewrittenTo, ","))
		}
		fmt.Fprintf(b, "%-22s %-8s %6.1fms %6.1fms %5.0f%% %4s %4s %5s %-9s %-10s %s\n", r.Addr, r.Role, r.MedianMS, r.P90MS, r.LossPct,
			tri(r.UDP), tri(r.TCP), tri(r.EDNS), r.NXDOMAIN, r.Truncation, strings.Join(notes, "; "))
	}
	if f := d.Filter; f != nil {
		fmt.Fprintf(b, "filter      %s: company resolver blocks it: %s", f.Canary, tri(f.CompanyBlocks))
		if f.CompanyAnswer != "" {
			fmt.Fprintf(b, " (%s", f.CompanyAnswer)
			if f.BlockMarker != "" {
				fmt.Fprintf(b, "; marked by %s", f.BlockMarker)
			}
			b.WriteString(")")
		}
		if f.ControlResolves != nil && !*f.ControlResolves {
			fmt.Fprintf(b, "; it does not resolve %s either", f.Control)
		}
		if len(f.BypassedBy) > 0 {
			fmt.Fprintf(b, "; resolved anyway by %s", strings.Join(f.BypassedBy, ", "))
		}
		b.WriteString("\n")
	}
	if ic := d.Interception; ic != nil {
		var answered []string
		for _, p := range ic.Probes {
			if p.Answered {
				answered = append(answered, fmt.Sprintf("%s answered %s in %.1f ms", p.Addr, p.Answer, p.RTTMS))
			}
		}
		if ic.Intercepted {
			fmt.Fprintf(b, "intercept   YES: %s\n", strings.Join(answered, "; "))
		} else {
			fmt.Fprintf(b, "intercept   none (%d addresses with no DNS server stayed silent)\n", len(ic.Probes))
		}
	}
	if c := d.Consistency; c != nil && len(c.Differs) > 0 {
		for _, x := range c.Differs {
			fmt.Fprintf(b, "consistency %s: %s answers %v, the company resolver %v\n", c.Name, x.Resolver, x.Answers, c.Company)
		}
	}
}

func formatService(b *strings.Builder, s *report.ServiceReport) {
	if s == nil {
		return
	}
	if s.Answers {
		fmt.Fprintf(b, "service     %s answered %d in %.1f ms\n", s.URL, s.Status, s.RTTMS)
		return
	}
	fmt.Fprintf(b, "service     %s does NOT answer: %s\n", s.URL, s.Error)
}

func formatPath(b *strings.Builder, s *report.ServiceReport, p *report.PathReport, n *report.NetworkReport) {
	if s == nil && p == nil && n == nil {
		return
	}
	b.WriteString("\n")
	formatService(b, s)
	if p != nil {
		if u := p.UDP; u != nil {
			if u.Reachable {
				fmt.Fprintf(b, "udp         port %d reachable (%.1f ms)\n", u.Port, u.RTTMS)
			} else {
				fmt.Fprintf(b, "udp         port %d NOT reachable: %s\n", u.Port, u.Error)
			}
		}
		if l := p.Loss; l != nil {
			fmt.Fprintf(b, "udp loss    %.1f%% of %d %s probes (median %.1f ms)\n", l.LossPct, l.Sent, l.Method, l.MedianMS)
		}
		if m := p.MTU; m != nil {
			if m.Error != "" {
				fmt.Fprintf(b, "mtu         unknown: %s\n", m.Error)
			} else {
				fmt.Fprintf(b, "mtu         path %d, tunnel MTU %d\n", m.PathMTU, m.TunnelMTU)
			}
		}
		if c := p.Captive; c != nil {
			switch {
			case c.Error != "":
				fmt.Fprintf(b, "portal      unknown: %s\n", c.Error)
			case c.Captive:
				fmt.Fprintf(b, "portal      YES (%d, to %s)\n", c.Status, c.RedirectTo)
			default:
				b.WriteString("portal      none\n")
			}
		}
		if pa := p.Public; pa != nil && pa.Error == "" {
			nat := ""
			if pa.NAT {
				nat = " behind NAT (local " + pa.Local + ")"
			}
			if pa.CGNAT {
				nat += ", carrier-grade NAT"
			}
			fmt.Fprintf(b, "public      %s%s\n", pa.Addr, nat)
		}
		if v6 := p.IPv6; v6 != nil {
			fmt.Fprintf(b, "ipv6        global address: %s, gateway over IPv6: %s\n", tri(&v6.GlobalAddr), tri(v6.GatewayReachable))
		}
	}
	if n != nil {
		line := fmt.Sprintf("interface   %s (%s)", n.Interface, n.Type)
		if w := n.WiFi; w != nil {
			if w.SignalDBM != nil {
				line += fmt.Sprintf(", signal %d dBm", *w.SignalDBM)
			}
			if w.Security != "" {
				line += ", " + w.Security
			}
		}
		fmt.Fprintln(b, line)
	}
}

// anchorFlag collects --anchor NAME=IP[:TCPPORT] targets.
type anchorFlag []netdiag.Target

func (a *anchorFlag) String() string { return fmt.Sprint(len(*a), " anchors") }

func (a *anchorFlag) Set(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=IP or NAME=IP:TCPPORT, got %q", v)
	}
	t := netdiag.Target{Name: name}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		t.Addr, t.TCPPort = ap.Addr(), ap.Port()
	} else if ip, err := netip.ParseAddr(addr); err == nil {
		t.Addr = ip
	} else {
		return fmt.Errorf("%q is not an IP address or IP:port", addr)
	}
	*a = append(*a, t)
	return nil
}

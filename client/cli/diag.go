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
	return report.Render(env.Stdout, rep, report.Options{})
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

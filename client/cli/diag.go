package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/tunnel"
)

// The waits of a diagnosis through the daemon.
const (
	// watchStart bounds the wait for the event stream to start before the
	// diagnosis is asked for, so no progress is missed; a daemon that
	// sends nothing by then still diagnoses, without progress shown.
	watchStart = 2 * time.Second
	// watchDrain bounds the wait, once the report is in, for the report
	// event that follows the last progress on the stream.
	watchDrain = 2 * time.Second
)

// standaloneFlags are the flags of a diagnosis without the daemon: they
// say where to measure and what to check, which tetherd knows from its
// enrollment.
var standaloneFlags = []string{"anchor", "stamp-port", "pin", "wg-port", "captive-url", "company-dns", "canary", "dns"}

func runDiag(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "diag")
	socket := socketFlag(fs)
	quick := fs.Bool("quick", false, "idle latency only: no load on the line, done within 2 s")
	asJSON := fs.Bool("json", false, "print the report as JSON (schema tether.report/v1)")
	server := fs.String("server", "", "diagnose without the daemon, against this measurement server (the gateway's API URL)")
	var anchors anchorFlag
	fs.Var(&anchors, "anchor", "with --server: another latency target, NAME=IP or NAME=IP:TCPPORT (repeatable)")
	stampPort := fs.Uint("stamp-port", 862, "with --server: the gateway's STAMP reflector port (UDP latency when ICMP is blocked)")
	pin := fs.String("pin", "", "with --server: trust an https server's self-signed certificate by this fingerprint (sha256:…)")
	wgPort := fs.Uint("wg-port", 0, "with --server: the gateway's WireGuard UDP port, to check that UDP gets through (0: skip)")
	captiveURL := fs.String("captive-url", "", "with --server: a plain-HTTP URL that answers 204, for the captive-portal check (default: the server's /generate_204 when it is http://)")
	companyDNS := fs.String("company-dns", "", "with --server: the company's filtering resolver, IP or IP:PORT, to check it and compare answers")
	canary := fs.String("canary", "", "with --server: a name the company resolver must block, to check that the filter holds")
	checkDNS := fs.Bool("dns", true, "with --server: check DNS health (--dns=false skips the DNS checks)")
	uplinks := fs.Bool("uplinks", false, "measure every uplink (Wi-Fi, Ethernet, a tethered phone) in one run, each bound to its interface, and name the better one for a call")
	compareTunnel := fs.Bool("compare-tunnel", false, "measure the path to the gateway beside the tunnel and through it in one run, and say whether a slowdown is the line's or the tunnel's (needs the tunnel up; a full diagnosis while connected does it anyway)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*uplinks || *compareTunnel) && *quick {
		fmt.Fprintf(env.Stderr, "tether diag: --uplinks and --compare-tunnel measure under load; they do not go with --quick\n")
		return errUsage
	}
	if *uplinks && *compareTunnel {
		fmt.Fprintf(env.Stderr, "tether diag: --uplinks and --compare-tunnel are two runs; ask for one at a time\n")
		return errUsage
	}
	if *compareTunnel && *server != "" {
		fmt.Fprintf(env.Stderr, "tether diag: --compare-tunnel goes through tetherd, which holds the tunnel; it does not go with --server\n")
		return errUsage
	}
	if *server == "" {
		var stray []string
		fs.Visit(func(f *flag.Flag) {
			if slices.Contains(standaloneFlags, f.Name) {
				stray = append(stray, "--"+f.Name)
			}
		})
		if len(stray) > 0 {
			fmt.Fprintf(env.Stderr, "tether diag: %s go with --server URL (a diagnosis without the daemon); tetherd diagnoses against its own gateway\n", strings.Join(stray, ", "))
			return errUsage
		}
		return diagThroughDaemon(ctx, env, &localapi.Client{Socket: *socket}, localapi.DiagnoseRequest{Quick: *quick, Uplinks: *uplinks, CompareTunnel: *compareTunnel}, *asJSON)
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
	var rep *report.Report
	if *uplinks {
		ups, err := netdiag.ListUplinks(nil, tunnel.DefaultInterface)
		if err != nil {
			return err
		}
		if rep, err = netdiag.CompareUplinks(ctx, cfg, ups); err != nil {
			return err
		}
	} else {
		c, err := netdiag.New(cfg)
		if err != nil {
			return err
		}
		rep = c.Run(ctx, mode)
	}
	if *asJSON {
		return printJSON(env.Stdout, rep)
	}
	return report.Render(env.Stdout, rep, report.Options{})
}

// diagThroughDaemon has tetherd diagnose (through the tunnel when it is
// up), showing its progress from the event stream on env.Stderr unless
// asJSON, then prints the report.
func diagThroughDaemon(ctx context.Context, env Env, c *localapi.Client, req localapi.DiagnoseRequest, asJSON bool) error {
	var rep report.Report
	var err error
	if asJSON {
		rep, err = c.DiagnoseWith(ctx, req)
	} else {
		rep, err = diagnoseWatching(ctx, c, req, &progressLines{w: env.Stderr})
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.Stdout, rep)
	}
	return report.Render(env.Stdout, &rep, report.Options{})
}

// diagnoseWatching watches the event stream, asks for the diagnosis once
// the stream has started, and shows every progress event until the
// report's event is in.
func diagnoseWatching(ctx context.Context, c *localapi.Client, req localapi.DiagnoseRequest, pl *progressLines) (report.Report, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started, reported, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	start, gotReport := sync.OnceFunc(func() { close(started) }), sync.OnceFunc(func() { close(reported) })
	go func() {
		defer close(done)
		defer start() // the stream failed: diagnose without progress
		_ = c.Watch(wctx, func(ev localapi.Event) error {
			start()
			switch ev.Type {
			case localapi.EventProgress:
				if ev.Progress != nil {
					pl.show(*ev.Progress)
				}
			case localapi.EventReport:
				gotReport()
			}
			return nil
		})
	}()
	wait := time.NewTimer(watchStart)
	select {
	case <-started:
	case <-wait.C:
	}
	wait.Stop()
	rep, err := c.DiagnoseWith(ctx, req)
	if err == nil {
		wait.Reset(watchDrain)
		select {
		case <-reported:
		case <-done:
		case <-wait.C:
		}
	}
	cancel()
	<-done
	pl.end()
	return rep, err
}

// progressLines shows a diagnosis's progress, a line a stage; the
// throughput stages, which report several times a second, overwrite
// their line.
type progressLines struct {
	w    io.Writer
	open string // the stage of a throughput line waiting for its end
}

func (p *progressLines) show(pr localapi.Progress) {
	text := safe(pr.Text)
	if text == "" {
		text = safe(pr.Stage)
	}
	if pr.Stage == "download" || pr.Stage == "upload" {
		if p.open != pr.Stage {
			p.end() // keep the last figure of the other direction
		}
		fmt.Fprintf(p.w, "\r%-50s", text)
		p.open = pr.Stage
		return
	}
	p.end()
	fmt.Fprintln(p.w, text)
}

// end ends a throughput line left open.
func (p *progressLines) end() {
	if p.open != "" {
		fmt.Fprintln(p.w)
		p.open = ""
	}
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

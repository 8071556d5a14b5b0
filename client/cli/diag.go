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
	mode := netdiag.ModeFull
	if *quick {
		mode = netdiag.ModeQuick
	}
	if *stampPort == 0 || *stampPort > 65535 {
		fmt.Fprintf(env.Stderr, "tether diag: --stamp-port must be from 1 to 65535\n")
		return errUsage
	}
	cfg := netdiag.Config{Server: *server, STAMPPort: uint16(*stampPort), Anchors: anchors, TLS: tc}
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

// FormatReport renders a diagnostics report for a person.
func FormatReport(r *netdiag.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Line diagnostics against %s (%s run, %.1f s)\n\n", r.Server, r.Mode, float64(r.DurationMS)/1000)
	fmt.Fprintf(&b, "%-10s %-16s %-6s %8s %8s %8s %8s %7s\n", "latency", "address", "method", "min", "median", "p90", "jitter", "loss")
	for _, t := range r.Latency.Targets {
		if t.Method == netdiag.MethodNone {
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
		fmt.Fprintf(&b, "\nthroughput  download %.1f Mbit/s, upload %.1f Mbit/s, up to %d streams, %.1f MB moved%s\n",
			tp.DownloadMbps, tp.UploadMbps, tp.Streams, float64(tp.Bytes)/1e6, stable)
	}
	if rs := r.Responsiveness; rs != nil && (rs.LoadedDownMS > 0 || rs.LoadedUpMS > 0) {
		fmt.Fprintf(&b, "under load  idle %.1f ms, downloading %.1f ms, uploading %.1f ms (%s)\n", rs.IdleMS, rs.LoadedDownMS, rs.LoadedUpMS, rs.Method)
		fmt.Fprintf(&b, "            bufferbloat grade %s (+%.0f ms), responsiveness %d RPM\n", rs.BufferbloatGrade, rs.IncreaseMS, rs.RPM)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n! %s: %s", e.Probe, e.Error)
	}
	if len(r.Errors) > 0 {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n%s\n", r.Summary)
	return b.String()
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

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tetherwfh/tether/bench"
)

// runDNS is `tether-bench dns`: our resolver, CoreDNS and Unbound side by
// side on this machine with the same list and query mix.
func runDNS(args []string) int {
	fs := flag.NewFlagSet("tether-bench dns", flag.ExitOnError)
	exe, _ := os.Executable()
	binDir := filepath.Dir(exe)
	entries := fs.Int("entries", 1_000_000, "block list entries")
	d := fs.Duration("duration", 20*time.Second, "each dnsperf run")
	runs := fs.Int("runs", 3, "runs per contender (the median is reported)")
	gw := fs.String("gateway-bin", filepath.Join(binDir, "tether-gateway"), "tether-gateway binary")
	coredns := fs.String("coredns", filepath.Join(binDir, "tools", "coredns"), "CoreDNS binary (go install github.com/coredns/coredns@v1.15.0)")
	unbound := fs.String("unbound", "/usr/sbin/unbound", "Unbound binary (apt install unbound)")
	dir := fs.String("dir", "", "scratch directory (default: a temporary one)")
	out := fs.String("out", "", "also write the table (Markdown) to this file, and the rows as JSON beside it")
	_ = fs.Parse(args)
	if *dir == "" {
		t, err := os.MkdirTemp("", "tether-bench-dns-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "tether-bench dns:", err)
			return 1
		}
		defer os.RemoveAll(t)
		*dir = t
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := bench.DNSConfig{Dir: *dir, Entries: *entries, Duration: *d, Runs: *runs, TetherGateway: *gw, CoreDNS: *coredns, Unbound: *unbound,
		Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }}
	rs, err := bench.RunDNS(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tether-bench dns:", err)
		return 1
	}
	table := bench.FormatDNS(cfg, rs)
	fmt.Print(table)
	if *out != "" {
		_ = os.WriteFile(*out, []byte(table), 0o644)
		j, _ := json.MarshalIndent(rs, "", "  ")
		_ = os.WriteFile(*out+".json", j, 0o644)
	}
	return 0
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/resolver"
)

// runDNS is `tether-gateway dns explain|lists`: it loads the config's
// lists itself, so it works whether or not the gateway is running.
func runDNS(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "explain" && args[0] != "lists") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("tether-gateway dns "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "/etc/tether/gateway.yaml", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	if fs.Parse(args[1:]) != nil {
		return 2
	}
	if args[0] == "explain" && fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: tether-gateway dns explain [--config PATH] [--json] NAME")
		return 2
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		fmt.Fprintf(stderr, "tether-gateway dns: %v\n", err)
		return 1
	}
	if cfg.DNS == nil {
		fmt.Fprintf(stderr, "tether-gateway dns: %s has no dns section\n", *config)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := resolver.New(ctx, *cfg.DNS, resolver.Options{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fmt.Fprintf(stderr, "tether-gateway dns: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if args[0] == "lists" {
		lists := r.Lists()
		if *asJSON {
			_ = enc.Encode(lists)
			return 0
		}
		for _, l := range lists {
			kind := "block " + l.Category
			if l.Allow {
				kind = "allow"
			}
			fmt.Fprintf(stdout, "%-20s %-18s %8d rules  %d malformed  %d unsupported  %s\n", l.Name, kind, l.Stats.Rules, l.Stats.Malformed, l.Stats.Unsupported, l.Source)
			for _, e := range l.Stats.Errors {
				fmt.Fprintf(stdout, "    %s\n", e)
			}
			if l.Err != "" {
				fmt.Fprintf(stdout, "    problem: %s\n", l.Err)
			}
		}
		return 0
	}
	ex, err := r.Explain(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "tether-gateway dns explain: %v\n", err)
		return 1
	}
	if *asJSON {
		_ = enc.Encode(ex)
		return 0
	}
	fmt.Fprintf(stdout, "%s: %s\n", ex.Name, ex.Summary)
	return 0
}

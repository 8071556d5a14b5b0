package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/resolver"
)

// listsLoadTimeout bounds loading the config's block lists, which may be
// downloads of tens of MB.
const listsLoadTimeout = 5 * time.Minute

// loadResolver builds the config's resolver in this process, so `dns
// explain` and `dns lists` work whether or not the gateway is running.
func loadResolver(ctx context.Context, env Env, config string) (*resolver.Resolver, error) {
	cfg, err := gateway.LoadConfig(config)
	if err != nil {
		return nil, err
	}
	if cfg.DNS == nil {
		return nil, fmt.Errorf("%s has no dns section", config)
	}
	ctx, cancel := context.WithTimeout(ctx, listsLoadTimeout)
	defer cancel()
	return resolver.New(ctx, *cfg.DNS, resolver.Options{Logger: slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

func indented(env Env) *json.Encoder {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc
}

// runDNSExplain is `tether-gateway dns explain NAME`: which rule in which
// list decides a name.
func runDNSExplain(ctx context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "dns explain")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args, 1, "tether-gateway dns explain [--config PATH] [--json] NAME"); err != nil {
		return err
	}
	r, err := loadResolver(ctx, env, *config)
	if err != nil {
		return err
	}
	ex, err := r.Explain(fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return indented(env).Encode(ex)
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n", ex.Name, ex.Summary)
	return nil
}

// runDNSLists is `tether-gateway dns lists`: each list, its rules and
// what it could not read.
func runDNSLists(ctx context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "dns lists")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args, 0, "tether-gateway dns lists [--config PATH] [--json]"); err != nil {
		return err
	}
	r, err := loadResolver(ctx, env, *config)
	if err != nil {
		return err
	}
	lists := r.Lists()
	if *asJSON {
		return indented(env).Encode(lists)
	}
	for _, l := range lists {
		kind := "block " + l.Category
		if l.Allow {
			kind = "allow"
		}
		fmt.Fprintf(env.Stdout, "%-20s %-18s %8d rules  %d malformed  %d unsupported  %s\n", l.Name, kind, l.Stats.Rules, l.Stats.Malformed, l.Stats.Unsupported, l.Source)
		for _, e := range l.Stats.Errors {
			fmt.Fprintf(env.Stdout, "    %s\n", e)
		}
		if l.Err != "" {
			fmt.Fprintf(env.Stdout, "    problem: %s\n", l.Err)
		}
	}
	return nil
}

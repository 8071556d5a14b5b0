package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherwfh/tether/tunnel"
)

// runTunnel is `tether tunnel keygen|pubkey|plan|up`: the tunnel without
// the daemon, for trying a config by hand. The daemon drives the same
// engines once it manages the tunnel.
func runTunnel(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, "usage: tether tunnel keygen|pubkey|plan|up [flags]\n\n"+
			"  keygen --out FILE   write a new private key (0600) and print its public key\n"+
			"  pubkey --key FILE   print the public key of a private key file\n"+
			"  plan -c wg0.conf    print the routes and DNS a mode would set, as JSON\n"+
			"  up -c wg0.conf      bring the tunnel up in the foreground until Ctrl-C")
		return errUsage
	}
	switch args[0] {
	case "keygen":
		fs := newFlags(env, "tunnel keygen")
		out := fs.String("out", "", "where to write the private key (required; never printed)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("--out is required: a private key is never printed")
		}
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite a key", *out)
		}
		k, err := tunnel.GeneratePrivateKey()
		if err != nil {
			return err
		}
		if err := tunnel.WriteKeyFile(*out, k); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k.Public())
		return nil
	case "pubkey":
		fs := newFlags(env, "tunnel pubkey")
		key := fs.String("key", "", "private key file")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		k, err := tunnel.ReadKeyFile(*key)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, k.Public())
		return nil
	case "plan", "up":
		return runTunnelPlanUp(ctx, env, args[0], args[1:])
	}
	fmt.Fprintf(env.Stderr, "tether tunnel: unknown subcommand %q\n", args[0])
	return errUsage
}

type prefixList []netip.Prefix

func (p *prefixList) String() string { return fmt.Sprint(*p) }
func (p *prefixList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		pf, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		*p = append(*p, pf)
	}
	return nil
}

func runTunnelPlanUp(ctx context.Context, env Env, sub string, args []string) error {
	fs := newFlags(env, "tunnel "+sub)
	conf := fs.String("c", "", "wg-quick config file (required)")
	mode := fs.String("mode", "config", "full, split, or config (routes from AllowedIPs, as wg-quick)")
	var company, exclude, lan prefixList
	fs.Var(&company, "company", "company prefixes for split mode (repeatable or comma-separated)")
	fs.Var(&exclude, "exclude", "prefixes kept out of the tunnel (repeatable)")
	fs.Var(&lan, "lan", "local network prefixes (full mode)")
	allowLAN := fs.Bool("allow-lan", true, "full mode: keep the LAN reachable outside the tunnel")
	failClosed := fs.Bool("fail-closed", false, "up, tun engine: block everything outside the tunnel until it is taken down")
	engine := fs.String("engine", "tun", "up: tun (root, Linux) or userspace (no root: proxies on loopback)")
	socks := fs.String("socks", "127.0.0.1:1080", "up, userspace: SOCKS5 listen address (empty: off)")
	httpProxy := fs.String("http", "127.0.0.1:8080", "up, userspace: HTTP proxy listen address (empty: off)")
	probe := fs.String("probe", "", "up: an address in the tunnel that answers ping (the gateway's tunnel address)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *conf == "" {
		fmt.Fprintln(env.Stderr, "tether tunnel "+sub+": -c FILE is required")
		return errUsage
	}
	f, err := os.Open(*conf)
	if err != nil {
		return err
	}
	cfg, err := tunnel.ParseConfig(f, filepath.Base(*conf))
	f.Close()
	if err != nil {
		return err
	}
	pol := tunnel.Policy{Mode: tunnel.Mode(*mode), CompanyPrefixes: company, Exclude: exclude, LAN: lan, AllowLAN: *allowLAN,
		CompanyDNS: cfg.Interface.DNS, SearchDomains: cfg.Interface.SearchDomains, MTU: cfg.Interface.MTU}
	for _, p := range cfg.Peers {
		pol.ConfigRoutes = append(pol.ConfigRoutes, p.AllowedIPs...)
		if p.Endpoint != "" {
			ap, err := tunnel.ResolveEndpoint(ctx, p.Endpoint)
			if err != nil {
				return err
			}
			pol.Endpoints = append(pol.Endpoints, ap.Addr())
		}
	}
	plan, err := tunnel.Compute(pol)
	if err != nil {
		return err
	}
	if sub == "plan" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	opts := tunnel.Options{Config: cfg, Plan: plan, Logger: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	if *probe != "" {
		if opts.Probe, err = netip.ParseAddr(*probe); err != nil {
			return fmt.Errorf("--probe: %w", err)
		}
	}
	var t tunnel.Tunnel
	switch *engine {
	case "tun":
		t, err = tunnel.NewTUN(tunnel.TUNOptions{Options: opts, FailClosed: *failClosed, DNS: tunnel.DetectDNS("/etc/resolv.conf", "/run/tether")})
	case "userspace":
		if *failClosed {
			return errors.New("--fail-closed needs the tun engine: the userspace engine does not touch the host's traffic")
		}
		t, err = tunnel.NewUserspace(tunnel.UserspaceOptions{Options: opts, SOCKSListen: *socks, HTTPListen: *httpProxy})
	default:
		return fmt.Errorf("--engine %q: want tun or userspace", *engine)
	}
	if err != nil {
		return err
	}
	if err := t.Up(ctx); err != nil {
		return errors.Join(err, t.Down(context.WithoutCancel(ctx)))
	}
	fmt.Fprintf(env.Stdout, "tunnel up (%s, %s mode, %d routes); Ctrl-C to take it down\n", *engine, plan.Mode, len(plan.Routes))
	if u, ok := t.(*tunnel.Userspace); ok {
		printProxies(env, u)
	}
	last := tunnel.Health("")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(env.Stdout, "taking the tunnel down")
			// The engine bounds its own Down, so a peer that vanished
			// mid-transfer cannot keep the command from exiting.
			err := t.Down(context.WithoutCancel(ctx))
			fmt.Fprintln(env.Stdout, "tunnel down")
			return err
		case <-tick.C:
			st := t.Status()
			if st.Health != last {
				fmt.Fprintf(env.Stdout, "%s  health %s %s (rx %d B, tx %d B)\n", time.Now().Format(time.TimeOnly), st.Health, st.Reason, st.RxBytes, st.TxBytes)
				last = st.Health
			}
		}
	}
}

// printProxies says where the userspace engine's proxies listen, which
// matters when their flags asked for port 0.
func printProxies(env Env, u *tunnel.Userspace) {
	var parts []string
	if a := u.SOCKSAddr(); a != nil {
		parts = append(parts, "SOCKS5 proxy on "+a.String())
	}
	if a := u.HTTPAddr(); a != nil {
		parts = append(parts, "HTTP proxy on "+a.String())
	}
	if len(parts) > 0 {
		fmt.Fprintln(env.Stdout, "  "+strings.Join(parts, ", "))
	}
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/termsafe"
)

// runAdmin is `tether-gateway token create` and `peer list|revoke`: they
// call the running gateway's admin API with the token from its config.
func runAdmin(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0] + " " + args[1]
	fs := flag.NewFlagSet("tether-gateway "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "/etc/tether/gateway.yaml", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON")
	ttl := fs.Duration("ttl", 24*time.Hour, "token create: how long the token is valid")
	uses := fs.Int("uses", 1, "token create: how many enrollments it allows")
	label := fs.String("label", "", "token create: a note, e.g. who it is for")
	if fs.Parse(args[2:]) != nil {
		return 2
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		fmt.Fprintf(stderr, "tether-gateway %s: %v\n", cmd, err)
		return 1
	}
	if cfg.API.AdminTokenFile == "" {
		fmt.Fprintf(stderr, "tether-gateway %s: %s sets no api.admin_token_file, so the admin API is off\n", cmd, *config)
		return 1
	}
	tok, err := os.ReadFile(cfg.API.AdminTokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "tether-gateway %s: %v\n", cmd, err)
		return 1
	}
	host, port, _ := net.SplitHostPort(cfg.API.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	api := gwapi.Config{BaseURL: "http://" + net.JoinHostPort(host, port), AdminToken: strings.TrimSpace(string(tok))}
	if cfg.API.TLSCertFile != "" {
		// The CLI runs beside the gateway: it trusts the certificate in
		// the gateway's own config, by its pin.
		pin, err := gateway.CertPin(cfg.API.TLSCertFile)
		if err != nil {
			fmt.Fprintf(stderr, "tether-gateway %s: %v\n", cmd, err)
			return 1
		}
		api.BaseURL, api.Pin = "https://"+net.JoinHostPort(host, port), pin
	}
	client, err := gwapi.New(api)
	if err != nil {
		fmt.Fprintf(stderr, "tether-gateway %s: %v\n", cmd, err)
		return 1
	}
	ctx := context.Background()
	// What the gateway sends (labels, error texts) is printed escaped:
	// a label must not be able to forge a row or drive the terminal.
	fail := func(err error) int {
		fmt.Fprintf(stderr, "tether-gateway %s: %s\n", cmd, termsafe.String(err.Error()))
		return 1
	}
	switch cmd {
	case "token create":
		tc, err := client.CreateToken(ctx, gwapi.TokenRequest{TTL: ttl.String(), Uses: *uses, Label: *label})
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			_ = json.NewEncoder(stdout).Encode(tc)
			return 0
		}
		fmt.Fprintf(stdout, "%s\n(valid until %s for %d enrollment(s); shown once, the gateway keeps only its hash)\n", tc.Secret, tc.Expires.Format(time.RFC3339), tc.Uses)
		return 0
	case "peer list":
		ps, err := client.Peers(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			_ = json.NewEncoder(stdout).Encode(ps)
			return 0
		}
		fmt.Fprintf(stdout, "%-4s %-15s %-10s %-20s %-9s %12s %12s  %s\n", "id", "address", "key", "label", "state", "rx", "tx", "last handshake")
		for _, p := range ps {
			state, hs := "active", "never"
			if p.Revoked {
				state = "revoked"
			}
			if !p.LastHandshake.IsZero() {
				hs = time.Since(p.LastHandshake).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(stdout, "%-4d %-15s %-10s %-20s %-9s %12d %12d  %s\n", p.ID, termsafe.String(p.Address), shortKey(p.PublicKey),
				termsafe.String(p.Label), state, p.RxBytes, p.TxBytes, hs)
		}
		return 0
	case "peer revoke":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "usage: tether-gateway peer revoke [--config PATH] ID")
			return 2
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return fail(fmt.Errorf("peer id %q: not a number", fs.Arg(0)))
		}
		rv, err := client.Revoke(ctx, id)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "revoked peer %d (%s, %s): removed from the live device in %.2f ms, %d sessions ended\n",
			rv.Peer.ID, termsafe.String(rv.Peer.Address), termsafe.String(rv.Peer.Label), rv.RemovedInMS, rv.SessionsEnded)
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// shortKey is a key's first 8 characters, as wg shows peers.
func shortKey(k string) string {
	r := []rune(termsafe.String(k))
	if len(r) > 8 {
		return string(r[:8]) + "…"
	}
	return string(r)
}

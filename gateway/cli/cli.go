// Package cli is the tether-gateway command's logic, one file per
// subcommand, as client/cli is the tether command's. Each subcommand
// writes to the writers it is given, so tests capture its output, and
// offers --json where a script reads it. The admin subcommands (token,
// peer) call the running gateway through gwapi.Client; the others read
// the config and its files themselves. cmd/tether-gateway is a thin main
// around Main.
//
// Boundaries: cli imports the gateway and its packages, never client or
// ui; it builds with CGO_ENABLED=0.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tetherwfh/tether/internal/termsafe"
)

// DefaultConfig is the config file every subcommand reads unless given
// --config.
const DefaultConfig = "/etc/tether/gateway.yaml"

const usage = `usage:
  tether-gateway init  --config PATH [--name NAME] [--listen HOST:PORT] [--endpoint HOST:PORT]
  tether-gateway serve --config PATH
  tether-gateway dns explain [--config PATH] [--json] NAME
  tether-gateway dns lists   [--config PATH] [--json]
  tether-gateway token create [--config PATH] [--ttl 24h] [--uses 1] [--label TEXT] [--json]
  tether-gateway peer list    [--config PATH] [--json]
  tether-gateway peer revoke  [--config PATH] [--json] ID
  tether-gateway fingerprint [--config PATH]
  tether-gateway version
`

// Env is what a subcommand runs with.
type Env struct {
	Stdout, Stderr io.Writer
}

// command is a subcommand: name is one word, or two for the groups (dns,
// token, peer).
type command struct {
	name string
	run  func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"init", runInit},
		{"serve", runServe},
		{"fingerprint", runFingerprint},
		{"dns explain", runDNSExplain},
		{"dns lists", runDNSLists},
		{"token create", runTokenCreate},
		{"peer list", runPeerList},
		{"peer revoke", runPeerRevoke},
		{"version", runVersion},
	}
}

// errUsage marks a usage error whose message has been printed.
var errUsage = errors.New("usage")

// Main runs tether-gateway with args (without the program name) until
// ctx is done (serve) or the subcommand ends, and returns the exit code:
// 0 success, 1 failure, 2 usage error.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	case "--version":
		args[0] = "version"
	}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) < len(words) || strings.Join(args[:len(words)], " ") != c.name {
			continue
		}
		err := c.run(ctx, env, args[len(words):])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp):
			return 2
		default:
			// What the gateway sends back (labels, error texts) is
			// escaped: it must not be able to drive the terminal.
			fmt.Fprintf(env.Stderr, "tether-gateway %s: %s\n", c.name, termsafe.String(err.Error()))
			return 1
		}
	}
	switch args[0] {
	case "dns", "token", "peer":
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	fmt.Fprintf(env.Stderr, "tether-gateway: unknown command %q\n%s", args[0], usage)
	return 2
}

// newFlags returns a subcommand's flag set, with --config, printing to
// env.Stderr.
func newFlags(env Env, name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tether-gateway "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs, fs.String("config", DefaultConfig, "configuration file")
}

// parse parses args into fs, wanting nargs positional arguments; a
// wrong count prints line, the subcommand's usage.
func parse(fs *flag.FlagSet, args []string, nargs int, line string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != nargs {
		fmt.Fprintln(fs.Output(), "usage: "+line)
		return errUsage
	}
	return nil
}

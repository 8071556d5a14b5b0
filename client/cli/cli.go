// Package cli is the tether command's logic, one file per subcommand. Each
// subcommand writes to the writers it is given, so tests capture its
// output, and offers --json wherever a script might read it.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tetherwfh/tether/client/localapi"
)

// Env is what a subcommand runs with.
type Env struct {
	Stdout, Stderr io.Writer
}

type command struct {
	name, summary string
	run           func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"status", "show the daemon's state and its gateway", runStatus},
		{"diag", "measure this line: latency, throughput, bufferbloat (no daemon needed)", runDiag},
		{"tunnel", "WireGuard by hand: keygen, pubkey, plan, up (full or split, TUN or userspace)", runTunnel},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks a usage error: the message has been printed.
var errUsage = fmt.Errorf("usage")

// Main runs the tether command with args (without the program name) and
// returns its exit code: 0 success, 1 failure, 2 usage error.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case err == errUsage || err == flag.ErrHelp:
			return 2
		default:
			fmt.Fprintf(env.Stderr, "tether %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.Stderr, "tether: unknown command %q\n", args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tether <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `tether <command> -h` for a command's flags.")
}

// newFlags returns a flag set for a subcommand that prints to env.Stderr.
func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tether "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// socketFlag adds the --socket flag every daemon-facing command takes.
func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", localapi.DefaultSocket, "the daemon's local API socket")
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}

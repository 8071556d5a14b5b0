// Package cli is the tether command's logic, one file per subcommand. Each
// subcommand writes to the writers it is given, so tests capture its
// output, and offers --json wherever a script might read it.
//
// Every subcommand but diag --server and tunnel talks to the daemon,
// tetherd, through its local API (client/localapi) and nothing else of
// it; diag --server and tunnel run netdiag and the tunnel engines
// themselves, without a daemon.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

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
		{"status", "show the daemon's state, mode, decision, tunnel and gateway", runStatus},
		{"up", "connect: tetherd decides full or split (--mode auto|full|split) and says why", runUp},
		{"down", "take the tunnel down", runDown},
		{"enroll", "enroll this device with a gateway: enroll URL --token T [--pin P]", runEnroll},
		{"diag", "diagnose this line through tetherd (--server URL: without the daemon)", runDiag},
		{"settings", "show the settings; settings set KEY=VALUE ... changes them", runSettings},
		{"events", "follow the daemon's events until Ctrl-C", runEvents},
		{"tunnel", "WireGuard by hand: keygen, pubkey, plan, up (full or split, TUN or userspace)", runTunnel},
		{"version", "print the version", runVersion},
		{"help", "list the commands", nil},
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
		if c.name != args[0] || c.run == nil {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case err == errUsage || err == flag.ErrHelp:
			return 2
		default:
			fmt.Fprintf(env.Stderr, "tether %s: %v\n", c.name, nextStep(c.name, err))
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
	fmt.Fprintln(w, "\nThe commands talk to tetherd on --socket (default "+localapi.DefaultSocket+");\n"+
		"diag --server, tunnel and version work without it. --json prints what a script reads.\n"+
		"Run `tether <command> -h` for a command's flags.")
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

// parse parses flags and refuses any other argument.
func parse(fs *flag.FlagSet, args []string) error {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), rest[0])
		return errUsage
	}
	return nil
}

// parseArgs parses flags wherever they stand among the arguments, as in
// `tether enroll URL --token T`, and returns the other arguments in
// order. After "--" every argument is taken as it is.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		left := fs.Args()
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" {
			return append(rest, left...), nil
		}
		if len(left) == 0 {
			return rest, nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stepError is a daemon's error with the next step added for a person.
type stepError struct {
	err  error
	text string
}

func (e *stepError) Error() string { return e.text }
func (e *stepError) Unwrap() error { return e.err }

// nextStep adds to an error of the daemon what to do about it, where the
// daemon's message does not already say (a command in backquotes).
func nextStep(cmd string, err error) error {
	var e *localapi.Error
	if !errors.As(err, &e) {
		return err
	}
	var step string
	switch e.Code {
	case localapi.CodeNotEnrolled:
		step = "enroll first: `tether enroll URL --token T`"
	case localapi.CodeModeNotAllowed:
		step = "`tether up --mode auto` lets tetherd pick a mode the company allows"
		if cmd == "settings" {
			step = "`tether settings set mode=auto` lets tetherd pick a mode the company allows"
		}
	case localapi.CodeEnrollFailed:
		step = "check the URL and --pin, and ask an admin for a new token (`tether-gateway token create`) if it was used or expired"
	case localapi.CodeBusy:
		step = "`tether events` shows its progress; try again when it is done"
	case localapi.CodePermission:
		step = "run it as root, or ask an admin to add your user to tetherd's socket group"
	default:
		return err
	}
	if strings.Contains(e.Message, "`") {
		return &stepError{err: err, text: e.Message}
	}
	return &stepError{err: err, text: e.Message + ": " + step}
}

// reasonOrStep is the lines after an operation's outcome: the daemon's
// reason for its state, indented, then step unless the reason already
// names a command to run.
func reasonOrStep(reason, step string) string {
	out := ""
	if reason != "" {
		out = "  " + safe(reason) + "\n"
	}
	if !strings.Contains(reason, "`") {
		out += step + "\n"
	}
	return out
}

// Command tether-dev runs Tether's embedded default, what `make run`
// shows: a gateway and a daemon on loopback, configured from scratch
// under one state directory, then this machine enrolled and a userspace
// tunnel up to the gateway. Each step prints what it did.
//
//	tether-dev [--state DIR] [--bin DIR] [--once]
//
// It is a composition root of its own, so the tether CLI links none of
// the gateway. It starts tether-gateway and tetherd as processes, talks
// to the daemon only through client/localapi and to the gateway only
// through gwapi.Client: the daemon enrolls, diagnoses, decides and
// brings the tunnel up, as `tether enroll`, `diag` and `up` ask it to.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherwfh/tether/client/cli"
)

// DefaultState is where tether-dev (and so `make run`) keeps its
// generated configs, logs and socket.
const DefaultState = ".tether-dev"

func main() {
	fs := flag.NewFlagSet("tether-dev", flag.ContinueOnError)
	state := fs.String("state", DefaultState, "directory for the generated configs, logs and socket")
	bin := fs.String("bin", "", "directory holding tether-gateway and tetherd (default: next to this binary)")
	once := fs.Bool("once", false, "stop after printing the first status")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tether-dev: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default action comes back, so a second
	// one ends the process at once, however stopping is going.
	context.AfterFunc(ctx, stop)
	err := Run(ctx, Options{StateDir: *state, BinDir: *bin, Out: os.Stdout, Once: *once, Format: cli.FormatStatus})
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether-dev: %v\n", err)
		os.Exit(1)
	}
}

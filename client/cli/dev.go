package cli

import (
	"context"

	"github.com/tetherwfh/tether/internal/devstack"
)

// DefaultDevState is where `tether dev` (and so `make run`) keeps its
// generated configs, logs and socket.
const DefaultDevState = ".tether-dev"

func runDev(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "dev")
	state := fs.String("state", DefaultDevState, "directory for the generated configs, logs and socket")
	bin := fs.String("bin", "", "directory holding tether-gateway and tetherd (default: next to this binary)")
	once := fs.Bool("once", false, "stop after printing the first status")
	if err := parse(fs, args); err != nil {
		return err
	}
	return devstack.Run(ctx, devstack.Options{StateDir: *state, BinDir: *bin, Out: env.Stdout, Once: *once, Format: FormatStatus})
}

package cli

import (
	"context"
	"fmt"

	"github.com/tetherwfh/tether/internal/version"
)

func runVersion(ctx context.Context, env Env, args []string) error {
	if err := parse(newFlags(env, "version"), args); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "tether", version.Version)
	return nil
}

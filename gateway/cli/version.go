package cli

import (
	"context"
	"fmt"

	"github.com/tetherwfh/tether/internal/version"
)

func runVersion(_ context.Context, env Env, _ []string) error {
	fmt.Fprintln(env.Stdout, "tether-gateway", version.Version)
	return nil
}

package cli

import (
	"context"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/internal/logging"
)

// runServe is `tether-gateway serve`: the gateway, until ctx is done.
func runServe(ctx context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "serve")
	if err := parse(fs, args, 0, "tether-gateway serve --config PATH"); err != nil {
		return err
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		return err
	}
	level, _ := logging.ParseLevel(cfg.LogLevel) // validated by LoadConfig
	srv, err := gateway.New(cfg, gateway.Options{Logger: logging.New(env.Stderr, level)})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

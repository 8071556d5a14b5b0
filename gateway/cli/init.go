package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/tetherwfh/tether/gateway"
)

// runInit is `tether-gateway init`: a starting config with its secrets,
// never replacing a file.
func runInit(_ context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "init")
	name := fs.String("name", "gateway", "the gateway's name, shown to clients")
	listen := fs.String("listen", gateway.DefaultAPIListen, "HTTP API listen address")
	endpoint := fs.String("endpoint", "", "host:port clients reach WireGuard on (default: this host's name, port 51820)")
	if err := parse(fs, args, 0, "tether-gateway init --config PATH [--name NAME] [--listen HOST:PORT] [--endpoint HOST:PORT]"); err != nil {
		return err
	}
	if *endpoint == "" {
		h, _ := os.Hostname()
		*endpoint = h + ":51820"
	}
	cfg := gateway.DefaultConfig()
	cfg.Name, cfg.API.Listen = *name, *listen
	wrote, pin, err := gateway.InitFiles(*config, &cfg, *endpoint)
	if err != nil {
		return err
	}
	for _, f := range wrote {
		fmt.Fprintf(env.Stdout, "wrote %s\n", f)
	}
	fmt.Fprintf(env.Stdout, "the API's TLS certificate is self-signed; clients pin it:\n  %s\n", pin)
	fmt.Fprintf(env.Stdout, "start the gateway with: tether-gateway serve --config %s\n", *config)
	return nil
}

// Command tether-gateway runs the company side of Tether.
//
//	tether-gateway init  --config gateway.yaml   write a starting config (0600)
//	tether-gateway serve --config gateway.yaml   run until SIGINT or SIGTERM
//	tether-gateway dns explain NAME              which rule decides a name
//
// Its logic is gateway/cli; `tether-gateway help` lists every subcommand.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherwfh/tether/gateway/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// Command tether-gateway runs the company side of Tether.
//
//	tether-gateway init  --config gateway.yaml   write a starting config (0600)
//	tether-gateway serve --config gateway.yaml   run until SIGINT or SIGTERM
//	tether-gateway dns explain NAME              which rule decides a name
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/internal/logging"
	"github.com/tetherwfh/tether/internal/version"
)

const usage = `usage:
  tether-gateway init  --config PATH [--name NAME] [--listen HOST:PORT] [--endpoint HOST:PORT]
  tether-gateway serve --config PATH
  tether-gateway dns explain [--config PATH] [--json] NAME
  tether-gateway dns lists   [--config PATH] [--json]
  tether-gateway token create [--config PATH] [--ttl 24h] [--uses 1] [--label TEXT]
  tether-gateway peer list    [--config PATH] [--json]
  tether-gateway peer revoke  [--config PATH] ID
  tether-gateway fingerprint [--config PATH]
  tether-gateway version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("tether-gateway "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "/etc/tether/gateway.yaml", "configuration file")
	switch args[0] {
	case "init":
		name := fs.String("name", "gateway", "the gateway's name, shown to clients")
		listen := fs.String("listen", gateway.DefaultAPIListen, "HTTP API listen address")
		endpoint := fs.String("endpoint", "", "host:port clients reach WireGuard on (default: this host's name, port 51820)")
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		if *endpoint == "" {
			h, _ := os.Hostname()
			*endpoint = h + ":51820"
		}
		cfg := gateway.DefaultConfig()
		cfg.Name, cfg.API.Listen = *name, *listen
		wrote, pin, err := gateway.InitFiles(*config, &cfg, *endpoint)
		if err != nil {
			fmt.Fprintf(stderr, "tether-gateway init: %v\n", err)
			return 1
		}
		for _, f := range wrote {
			fmt.Fprintf(stdout, "wrote %s\n", f)
		}
		fmt.Fprintf(stdout, "the API's TLS certificate is self-signed; clients pin it:\n  %s\n", pin)
		fmt.Fprintf(stdout, "start the gateway with: tether-gateway serve --config %s\n", *config)
		return 0
	case "fingerprint":
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		cfg, err := gateway.LoadConfig(*config)
		if err != nil {
			fmt.Fprintf(stderr, "tether-gateway fingerprint: %v\n", err)
			return 1
		}
		if cfg.API.TLSCertFile == "" {
			fmt.Fprintf(stderr, "tether-gateway fingerprint: %s serves plain HTTP (no api.tls_cert_file)\n", *config)
			return 1
		}
		pin, err := gateway.CertPin(cfg.API.TLSCertFile)
		if err != nil {
			fmt.Fprintf(stderr, "tether-gateway fingerprint: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, pin)
		return 0
	case "serve":
		if fs.Parse(args[1:]) != nil {
			return 2
		}
		cfg, err := gateway.LoadConfig(*config)
		if err != nil {
			fmt.Fprintf(stderr, "tether-gateway serve: %v\n", err)
			return 1
		}
		level, _ := logging.ParseLevel(cfg.LogLevel) // validated by LoadConfig
		srv, err := gateway.New(cfg, gateway.Options{Logger: logging.New(stderr, level)})
		if err != nil {
			fmt.Fprintf(stderr, "tether-gateway serve: %v\n", err)
			return 1
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := srv.Run(ctx); err != nil {
			fmt.Fprintf(stderr, "tether-gateway serve: %v\n", err)
			return 1
		}
		return 0
	case "dns":
		return runDNS(args[1:], stdout, stderr)
	case "token", "peer":
		return runAdmin(args, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "tether-gateway", version.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tether-gateway: unknown command %q\n%s", args[0], usage)
	return 2
}

// Command tether-bench benchmarks a gateway.
//
//	tether-bench api [--gateway URL] [--clients N] [--duration D] [--json]
//	tether-bench dns [--entries N] [--duration D] [--runs N] [--coredns PATH] [--unbound PATH] [--out FILE]
//
// Without --gateway it starts a gateway in-process on loopback and
// benchmarks that, so the command works with no setup.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tetherwfh/tether/bench"
	"github.com/tetherwfh/tether/gateway"
)

const usage = `usage:
  tether-bench api [--gateway URL] [--clients N] [--duration D] [--json]
  tether-bench peers [--enrolled N] [--connected N] [--gateway-bin PATH] [--json]
  tether-bench dns [--entries N] [--duration D] [--runs N] [--gateway-bin PATH] [--coredns PATH] [--unbound PATH] [--out FILE]`

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "api" && os.Args[1] != "dns" && os.Args[1] != "peers") {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if os.Args[1] == "dns" {
		os.Exit(runDNS(os.Args[2:]))
	}
	if os.Args[1] == "peers" {
		os.Exit(runPeers(os.Args[2:]))
	}
	fs := flag.NewFlagSet("tether-bench api", flag.ExitOnError)
	target := fs.String("gateway", "", "gateway API base URL (default: an in-process gateway on loopback)")
	clients := fs.Int("clients", 4, "concurrent clients")
	d := fs.Duration("duration", 5*time.Second, "length of the run")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *target == "" {
		url, shutdown, err := localGateway(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tether-bench: %v\n", err)
			os.Exit(1)
		}
		defer shutdown()
		*target = url
	}
	r, err := bench.RunAPI(ctx, bench.APIConfig{BaseURL: *target, Concurrency: *clients, Duration: *d})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tether-bench: %v\n", err)
		os.Exit(1)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	fmt.Print(r)
}

// localGateway starts a gateway in this process on loopback, with
// neither STAMP nor WireGuard: the API alone.
func localGateway(ctx context.Context) (string, func(), error) {
	cfg := gateway.DefaultConfig()
	cfg.Name, cfg.API.Listen, cfg.Measure.STAMPListen = "bench", "127.0.0.1:0", ""
	g, err := bench.StartEmbedded(ctx, cfg, gateway.Options{})
	if err != nil {
		return "", nil, err
	}
	return g.URL, func() { _ = g.Stop() }, nil
}

// Command tetherd is the Tether daemon. It serves the local API that the
// tether CLI and the tray use, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherwfh/tether/client"
	"github.com/tetherwfh/tether/internal/logging"
	"github.com/tetherwfh/tether/internal/version"
)

func main() {
	config := flag.String("config", "/etc/tether/tetherd.yaml", "configuration file")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("tetherd", version.Version)
		return
	}
	cfg, err := client.LoadConfig(*config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tetherd: %v\n", err)
		os.Exit(1)
	}
	level, _ := logging.ParseLevel(cfg.LogLevel) // validated by LoadConfig
	d, err := client.New(cfg, client.Options{Logger: logging.New(os.Stderr, level)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tetherd: %v\n", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = d.Run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tetherd: %v\n", err)
		os.Exit(1)
	}
}

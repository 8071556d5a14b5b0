// Command tether-lab brings the namespace lab up by hand for exploring
// (`make lab PROFILE=dsl_bloated`), prints how to get into each namespace
// and tears everything down on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tetherwfh/tether/internal/logging"
	"github.com/tetherwfh/tether/internal/netlab"
)

func main() {
	profile := flag.String("profile", "cable_bloated", "link profile: "+strings.Join(netlab.ProfileNames(), ", "))
	flag.Parse()
	if err := run(*profile); err != nil {
		fmt.Fprintf(os.Stderr, "tether-lab: %v\n", err)
		os.Exit(1)
	}
}

func run(name string) error {
	p, err := netlab.LookupProfile(name)
	if err != nil {
		return err
	}
	if err := netlab.Supported(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := netlab.Start(ctx, netlab.Config{Profile: p, Logger: logging.New(os.Stderr, 0)})
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Printf("lab %s is up with profile %s: %s\n\n", l.ID, p.Name, p.Description)
	for _, ns := range l.Namespaces() {
		fmt.Printf("  %-8s ip netns exec %s bash\n", ns.Role, ns.Name)
	}
	fmt.Printf("\nTry: ip netns exec %s ping %s\n     ip netns exec %s iperf3 -c %s   (after: ip netns exec %s iperf3 -s -B %s)\n\nCtrl-C tears it down.\n",
		l.Home.Name, netlab.WebAddr, l.Home.Name, netlab.SpeedAddr, l.Internet.Name, netlab.SpeedAddr)
	<-ctx.Done()
	fmt.Println("\ntearing down")
	return nil
}

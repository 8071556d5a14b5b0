package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tetherwfh/tether/bench"
)

// runPeers is `tether-bench peers`: a real gateway process with enrolled
// and connected peers; RSS, enrollment, handshake and revocation times.
func runPeers(args []string) int {
	fs := flag.NewFlagSet("tether-bench peers", flag.ExitOnError)
	exe, _ := os.Executable()
	enrolled := fs.Int("enrolled", 100, "peers to enroll")
	connected := fs.Int("connected", 10, "of those, peers to connect")
	gw := fs.String("gateway-bin", filepath.Join(filepath.Dir(exe), "tether-gateway"), "tether-gateway binary")
	asJSON := fs.Bool("json", false, "print JSON")
	_ = fs.Parse(args)
	dir, err := os.MkdirTemp("", "tether-bench-peers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tether-bench peers:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	r, err := bench.RunPeers(context.Background(), bench.PeersConfig{GatewayBin: *gw, Dir: dir, Enrolled: *enrolled, Connected: *connected})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tether-bench peers:", err)
		return 1
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return 0
	}
	fmt.Print(r)
	return 0
}

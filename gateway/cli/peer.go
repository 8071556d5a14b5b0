package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tetherwfh/tether/internal/termsafe"
)

// runPeerList is `tether-gateway peer list`: every peer, with its traffic
// and last handshake. What the gateway stored (labels, addresses) is
// printed escaped: a label must not be able to forge a row or drive the
// terminal.
func runPeerList(ctx context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "peer list")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args, 0, "tether-gateway peer list [--config PATH] [--json]"); err != nil {
		return err
	}
	api, err := adminClient(*config)
	if err != nil {
		return err
	}
	ps, err := api.Peers(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(ps)
	}
	fmt.Fprintf(env.Stdout, "%-4s %-15s %-10s %-20s %-9s %12s %12s  %s\n", "id", "address", "key", "label", "state", "rx", "tx", "last handshake")
	for _, p := range ps {
		state, hs := "active", "never"
		if p.Revoked {
			state = "revoked"
		}
		if !p.LastHandshake.IsZero() {
			hs = time.Since(p.LastHandshake).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(env.Stdout, "%-4d %-15s %-10s %-20s %-9s %12d %12d  %s\n", p.ID, termsafe.String(p.Address), shortKey(p.PublicKey),
			termsafe.String(p.Label), state, p.RxBytes, p.TxBytes, hs)
	}
	return nil
}

// runPeerRevoke is `tether-gateway peer revoke ID`: access ends before it
// returns.
func runPeerRevoke(ctx context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "peer revoke")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args, 1, "tether-gateway peer revoke [--config PATH] [--json] ID"); err != nil {
		return err
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil {
		return fmt.Errorf("peer id %q: not a number", fs.Arg(0))
	}
	api, err := adminClient(*config)
	if err != nil {
		return err
	}
	rv, err := api.Revoke(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(rv)
	}
	fmt.Fprintf(env.Stdout, "revoked peer %d (%s, %s): removed from the live device in %.2f ms, %d sessions ended\n",
		rv.Peer.ID, termsafe.String(rv.Peer.Address), termsafe.String(rv.Peer.Label), rv.RemovedInMS, rv.SessionsEnded)
	return nil
}

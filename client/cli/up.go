package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
)

func runUp(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "up")
	socket := socketFlag(fs)
	mode := fs.String("mode", "", "auto (tetherd decides), full or split, where company policy allows it (default: the settings' mode)")
	asJSON := fs.Bool("json", false, "print the decision applied, as JSON: {mode, reasons: [{id, text}]}")
	wait := fs.Duration("wait", 10*time.Second, "wait this long for the tunnel to connect, and fail with tetherd's reason if it does not (0: don't wait)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *wait < 0 {
		fmt.Fprintf(env.Stderr, "tether up: --wait %s: want 0 or more\n", *wait)
		return errUsage
	}
	switch *mode {
	case "", localapi.ModeAuto, localapi.ModeFull, localapi.ModeSplit:
	default:
		fmt.Fprintf(env.Stderr, "tether up: --mode %q: want auto, full or split\n", *mode)
		return errUsage
	}
	lc := &localapi.Client{Socket: *socket}
	dec, err := lc.Up(ctx, *mode)
	if err != nil {
		return err
	}
	if *asJSON {
		err = printJSON(env.Stdout, dec)
	} else {
		_, err = io.WriteString(env.Stdout, FormatDecision(dec))
	}
	if err != nil || *wait == 0 {
		return err
	}
	start := time.Now()
	st, err := waitConnected(ctx, lc, *wait)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(env.Stdout, "Connected in %.1f s%s.\n", time.Since(start).Seconds(), connectedVia(st))
	}
	return nil
}

// waitConnected polls the daemon until the tunnel answers (connected, or
// degraded: it has answered), and fails with the daemon's reason when it
// is still not up after wait, or can no longer come up (revoked, down).
func waitConnected(ctx context.Context, lc *localapi.Client, wait time.Duration) (localapi.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var st localapi.Status // the last status read
	for {
		now, err := lc.Status(ctx)
		if err == nil {
			st = now
		}
		switch {
		case err != nil && ctx.Err() == nil:
			return st, err
		case err != nil:
		case st.State == localapi.StateConnected || st.State == localapi.StateDegraded:
			return st, nil
		case st.State == localapi.StateNeedsEnrollment || st.State == localapi.StateDisconnected:
			return st, errors.New(st.Reason)
		}
		select {
		case <-ctx.Done():
			if st.Reason == "" {
				return st, fmt.Errorf("not connected after %s (%s); `tether status` follows it", wait, st.State)
			}
			return st, fmt.Errorf("not connected after %s: %s", wait, st.Reason)
		case <-t.C:
		}
	}
}

// connectedVia names the gateway and the engine, where the status says.
func connectedVia(st localapi.Status) string {
	var parts []string
	if st.Gateway.Name != "" {
		parts = append(parts, "to "+safe(st.Gateway.Name))
	}
	if st.Tunnel != nil && st.Tunnel.Endpoint != "" {
		parts = append(parts, "at "+safe(st.Tunnel.Endpoint))
	}
	if st.Engine != "" {
		parts = append(parts, "("+safe(st.Engine)+" engine)")
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}

// FormatDecision renders the decision `tether up` applied: the mode, then
// each reason with the ID of the rule or verdict that decided.
func FormatDecision(dec localapi.Decision) string {
	var b strings.Builder
	if len(dec.Reasons) == 0 {
		fmt.Fprintf(&b, "Connecting in %s mode.\n", safe(dec.Mode))
	} else {
		fmt.Fprintf(&b, "Connecting in %s mode:\n", safe(dec.Mode))
		for _, r := range dec.Reasons {
			fmt.Fprintf(&b, "  - %s (%s)\n", safe(r.Text), safe(r.ID))
		}
	}
	b.WriteString("`tether status` shows the tunnel; `tether events` follows it.\n")
	return b.String()
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
)

func runStatus(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "status")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := (&localapi.Client{Socket: *socket}).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	_, err = io.WriteString(env.Stdout, FormatStatus(st, time.Now()))
	return err
}

// FormatStatus renders a status for a person, as of now.
func FormatStatus(st localapi.Status, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tetherd  %s (version %s, up %s)\n", st.State, st.Version, roundAge(now.Sub(st.Since)))
	g := st.Gateway
	name := ""
	if g.Name != "" {
		name = " (" + g.Name + ")"
	}
	switch {
	case g.LastCheck.IsZero():
		fmt.Fprintf(&b, "gateway  %s%s: not checked yet\n", g.URL, name)
	case g.Reachable:
		fmt.Fprintf(&b, "gateway  %s%s: reachable, answered in %s, checked %s ago\n",
			g.URL, name, roundRTT(time.Duration(g.RTT)), roundAge(now.Sub(g.LastCheck)))
	default:
		fmt.Fprintf(&b, "gateway  %s%s: UNREACHABLE, checked %s ago\n         %s\n",
			g.URL, name, roundAge(now.Sub(g.LastCheck)), g.Error)
	}
	return b.String()
}

// roundRTT keeps three significant figures: 0.412ms, 12.3ms, 1.23s.
func roundRTT(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return fmt.Sprintf("%.3fms", float64(d)/1e6)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func roundAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String()
}

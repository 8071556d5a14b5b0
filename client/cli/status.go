package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/internal/termsafe"
)

func runStatus(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "status")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the status as the daemon sent it, as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := (&localapi.Client{Socket: *socket}).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, st)
	}
	_, err = io.WriteString(env.Stdout, FormatStatus(st, time.Now()))
	return err
}

// indent lines up a field's further lines under its first.
const indent = "         "

// FormatStatus renders a status for a person, as of now: the state and
// its reason first, then the mode and engine, the decision with each
// reason, the tunnel, the last report, the enrollment, the proxies, any
// problem, and the gateway. A part the status leaves out is not shown.
// Every string from the daemon is escaped (internal/termsafe): some came
// from the network.
func FormatStatus(st localapi.Status, now time.Time) string {
	var b strings.Builder
	field := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-8s %s\n", label, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) {
		b.WriteString(indent + fmt.Sprintf(format, args...) + "\n")
	}
	field("tetherd", "%s (version %s, up %s)", safe(string(st.State)), safe(st.Version), roundAge(now.Sub(st.Since)))
	if st.Reason != "" {
		more("%s", safe(st.Reason))
	}
	var mode []string
	if st.Mode != "" {
		mode = append(mode, safe(st.Mode)+" tunnel")
	}
	if st.Engine != "" {
		mode = append(mode, safe(st.Engine)+" engine")
	}
	if st.FailClosed {
		mode = append(mode, "kill switch on")
	}
	if len(mode) > 0 {
		field("mode", "%s", strings.Join(mode, ", "))
	}
	if d := st.Decision; d != nil {
		field("decision", "%s", safe(d.Mode))
		for _, r := range d.Reasons {
			more("%s (%s)", safe(r.Text), safe(r.ID))
		}
	}
	if t := st.Tunnel; t != nil {
		hs := "no handshake yet"
		if t.HandshakeAgeS >= 0 {
			hs = "handshake " + roundAge(time.Duration(t.HandshakeAgeS*float64(time.Second))) + " ago"
		}
		health := ""
		if t.Health != "" {
			health = " (" + safe(t.Health) + ")"
		}
		field("tunnel", "%s: %s, received %s, sent %s%s", safe(t.Endpoint), hs, bytesSI(t.RxBytes), bytesSI(t.TxBytes), health)
	}
	if r := st.LastReport; r != nil {
		when := ""
		if !r.At.IsZero() {
			when = ", " + roundAge(now.Sub(r.At)) + " ago"
		}
		field("report", "%s (%s%s)", safe(r.Summary), safe(string(r.Mode)), when)
		if len(r.Verdicts) > 0 {
			ids := make([]string, len(r.Verdicts))
			for i, v := range r.Verdicts {
				ids[i] = safe(string(v))
			}
			more("verdicts: %s", strings.Join(ids, ", "))
		}
	}
	if e := st.Enrollment; e != nil {
		field("device", "enrolled with %s as %s (peer %d)", safe(e.Gateway), safe(e.Address), e.PeerID)
		if e.Revoked != "" {
			more("REVOKED: %s", safe(e.Revoked))
		}
	}
	if p := st.Proxies; p != nil {
		var parts []string
		for _, x := range []struct{ name, addr string }{{"SOCKS5", p.SOCKS5}, {"HTTP", p.HTTP}, {"DNS", p.DNS}} {
			if x.addr != "" {
				parts = append(parts, x.name+" "+safe(x.addr))
			}
		}
		if len(parts) > 0 {
			field("proxies", "%s", strings.Join(parts, ", "))
		}
	}
	for _, p := range st.Problems {
		field("problem", "%s", safe(p))
	}
	g := st.Gateway
	name := ""
	if g.Name != "" {
		name = " (" + safe(g.Name) + ")"
	}
	switch {
	case g.URL == "" && g.LastCheck.IsZero():
		field("gateway", "none yet: enrolling names it")
	case g.LastCheck.IsZero():
		field("gateway", "%s%s: not checked yet", safe(g.URL), name)
	case g.Reachable:
		field("gateway", "%s%s: reachable, answered in %s, checked %s ago",
			safe(g.URL), name, roundRTT(time.Duration(g.RTT)), roundAge(now.Sub(g.LastCheck)))
	default:
		field("gateway", "%s%s: UNREACHABLE, checked %s ago", safe(g.URL), name, roundAge(now.Sub(g.LastCheck)))
		if g.Error != "" {
			more("%s", safe(g.Error))
		}
	}
	return b.String()
}

func safe(s string) string { return termsafe.String(s) }

// bytesSI writes a byte count in SI units, three significant figures:
// 512 B, 1.23 kB, 45.6 MB.
func bytesSI(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := 0
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	for v /= 1000; v >= 999.5 && unit < len(units)-1; unit++ {
		v /= 1000
	}
	switch {
	case v < 9.995:
		return fmt.Sprintf("%.2f %s", v, units[unit])
	case v < 99.95:
		return fmt.Sprintf("%.1f %s", v, units[unit])
	}
	return fmt.Sprintf("%.0f %s", math.Round(v), units[unit])
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

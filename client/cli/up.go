package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tetherwfh/tether/client/localapi"
)

func runUp(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "up")
	socket := socketFlag(fs)
	mode := fs.String("mode", "", "auto (tetherd decides), full or split, where company policy allows it (default: the settings' mode)")
	asJSON := fs.Bool("json", false, "print the decision applied, as JSON: {mode, reasons: [{id, text}]}")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch *mode {
	case "", localapi.ModeAuto, localapi.ModeFull, localapi.ModeSplit:
	default:
		fmt.Fprintf(env.Stderr, "tether up: --mode %q: want auto, full or split\n", *mode)
		return errUsage
	}
	dec, err := (&localapi.Client{Socket: *socket}).Up(ctx, *mode)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, dec)
	}
	_, err = io.WriteString(env.Stdout, FormatDecision(dec))
	return err
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

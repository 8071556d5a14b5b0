package cli

import (
	"context"
	"fmt"

	"github.com/tetherwfh/tether/client/localapi"
)

func runDown(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "down")
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print the daemon's status afterwards, as JSON (as `tether status --json`)")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := (&localapi.Client{Socket: *socket}).Down(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, st)
	}
	_, err = fmt.Fprintf(env.Stdout, "Tunnel down; tetherd is %s.\n%s", safe(string(st.State)), reasonOrStep(st.Reason, "`tether up` connects again."))
	return err
}

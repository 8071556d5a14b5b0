package cli

import (
	"context"
	"fmt"
	"net/url"

	"github.com/tetherwfh/tether/client/localapi"
)

func runEnroll(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "enroll")
	socket := socketFlag(fs)
	token := fs.String("token", "", "the enrollment token an admin created (`tether-gateway token create`; required)")
	pin := fs.String("pin", "", "the gateway certificate's pin (sha256:…); empty trusts the system's roots")
	label := fs.String("label", "", "this device's name for the admins (default: the host name)")
	asJSON := fs.Bool("json", false, "print the daemon's status afterwards, as JSON (as `tether status --json`)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || *token == "" {
		fmt.Fprintln(env.Stderr, "usage: tether enroll URL --token T [--pin P] [--label L] [--json]\n"+
			"  URL is the gateway's API (https://gw.example.com:8443); an admin gives you the token and the pin.")
		return errUsage
	}
	u, err := url.Parse(rest[0])
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		fmt.Fprintf(env.Stderr, "tether enroll: %q is not the gateway's URL: want https://HOST:PORT\n", rest[0])
		return errUsage
	}
	st, err := (&localapi.Client{Socket: *socket}).Enroll(ctx, localapi.EnrollRequest{URL: rest[0], Token: *token, Pin: *pin, Label: *label})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, st)
	}
	if e := st.Enrollment; e != nil {
		fmt.Fprintf(env.Stdout, "Enrolled with %s as %s (peer %d).\n", safe(e.Gateway), safe(e.Address), e.PeerID)
	} else {
		fmt.Fprintln(env.Stdout, "Enrolled.")
	}
	_, err = fmt.Fprintf(env.Stdout, "tetherd is %s.\n%s", safe(string(st.State)), reasonOrStep(st.Reason, "`tether up` connects; `tether diag` checks this line first."))
	return err
}

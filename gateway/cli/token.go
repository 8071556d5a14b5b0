package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
)

// runTokenCreate is `tether-gateway token create`: an enrollment token
// from the running gateway, its secret shown once.
func runTokenCreate(ctx context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "token create")
	asJSON := fs.Bool("json", false, "print JSON")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	uses := fs.Int("uses", 1, "how many enrollments it allows")
	label := fs.String("label", "", "a note, e.g. who it is for")
	if err := parse(fs, args, 0, "tether-gateway token create [--config PATH] [--ttl 24h] [--uses 1] [--label TEXT] [--json]"); err != nil {
		return err
	}
	api, err := adminClient(*config)
	if err != nil {
		return err
	}
	tc, err := api.CreateToken(ctx, gwapi.TokenRequest{TTL: ttl.String(), Uses: *uses, Label: *label})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(tc)
	}
	fmt.Fprintf(env.Stdout, "%s\n(valid until %s for %d enrollment(s); shown once, the gateway keeps only its hash)\n", tc.Secret, tc.Expires.Format(time.RFC3339), tc.Uses)
	return nil
}

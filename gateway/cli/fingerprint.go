package cli

import (
	"context"
	"fmt"

	"github.com/tetherwfh/tether/gateway"
)

// runFingerprint is `tether-gateway fingerprint`: the pin of the API's
// certificate, alone on a line, for clients to pin.
func runFingerprint(_ context.Context, env Env, args []string) error {
	fs, config := newFlags(env, "fingerprint")
	if err := parse(fs, args, 0, "tether-gateway fingerprint [--config PATH]"); err != nil {
		return err
	}
	cfg, err := gateway.LoadConfig(*config)
	if err != nil {
		return err
	}
	if cfg.API.TLSCertFile == "" {
		return fmt.Errorf("%s serves plain HTTP (no api.tls_cert_file)", *config)
	}
	pin, err := gateway.CertPin(cfg.API.TLSCertFile)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, pin)
	return nil
}

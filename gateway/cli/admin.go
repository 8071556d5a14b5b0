package cli

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/termsafe"
)

// adminClient is a client of the admin API of the gateway that config
// describes: the CLI runs beside it, so it reaches the API on loopback
// when the gateway listens on every address, sends the admin token from
// the config's token file, and trusts the certificate in the config by
// its pin.
func adminClient(config string) (*gwapi.Client, error) {
	cfg, err := gateway.LoadConfig(config)
	if err != nil {
		return nil, err
	}
	if cfg.API.AdminTokenFile == "" {
		return nil, fmt.Errorf("%s sets no api.admin_token_file, so the admin API is off", config)
	}
	tok, err := os.ReadFile(cfg.API.AdminTokenFile)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(cfg.API.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	api := gwapi.Config{BaseURL: "http://" + net.JoinHostPort(host, port), AdminToken: strings.TrimSpace(string(tok))}
	if cfg.API.TLSCertFile != "" {
		pin, err := gateway.CertPin(cfg.API.TLSCertFile)
		if err != nil {
			return nil, err
		}
		api.BaseURL, api.Pin = "https://"+net.JoinHostPort(host, port), pin
	}
	return gwapi.New(api)
}

// shortKey is a key's first 8 characters, as wg shows peers.
func shortKey(k string) string {
	r := []rune(termsafe.String(k))
	if len(r) > 8 {
		return string(r[:8]) + "…"
	}
	return string(r)
}

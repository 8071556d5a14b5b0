// Package enroll is the client side of enrollment: it asks a gateway for
// access with a token and turns the answer into a tunnel configuration.
// The daemon, `make run`, the bench and the gateway's own tests share it,
// so there is one reading of gwapi.Enrollment.
package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
)

// maxAnswer bounds the gateway's answer: an enrollment is well under
// 4 KiB, and an admin's peer list of 10,000 peers about 3 MiB.
const maxAnswer = 16 << 20

// Enroll sends key's public half and the token to the gateway's API at
// base (e.g. https://gw.example.com:8443) and returns its answer. hc nil
// means http.DefaultClient.
func Enroll(ctx context.Context, hc *http.Client, base, token string, key tunnel.PublicKey, label string) (gwapi.Enrollment, error) {
	var en gwapi.Enrollment
	err := Post(ctx, hc, base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: key.String(), Label: label}, &en)
	if err != nil {
		return gwapi.Enrollment{}, fmt.Errorf("enroll: %w", err)
	}
	return en, nil
}

// Post sends in as JSON to url, with bearer as the admin token when set,
// and decodes a 200 answer into out. Any other status is an error carrying
// the gateway's message.
func Post(ctx context.Context, hc *http.Client, url, bearer string, in, out any) error {
	return Call(ctx, hc, http.MethodPost, url, bearer, in, out)
}

// Call is Post for any method; a nil in sends no body. The admin CLI
// uses it too, so every client of the gateway's API reads its answers
// and errors one way.
func Call(ctx context.Context, hc *http.Client, method, url, bearer string, in, out any) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("is the gateway running? %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("reading the gateway's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e gwapi.Error
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			return fmt.Errorf("the gateway said %s: %s", resp.Status, e.Message)
		}
		return fmt.Errorf("the gateway said %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the gateway's answer: %w", err)
	}
	return nil
}

// Tunnel turns an enrollment into a tunnel configuration and plan for
// mode, which the company policy must allow. endpoint is the gateway's
// resolved endpoint address, which a full tunnel routes around.
func Tunnel(key tunnel.PrivateKey, en gwapi.Enrollment, mode tunnel.Mode, endpoint netip.Addr) (*tunnel.Config, *tunnel.Plan, error) {
	if !slices.Contains(en.AllowedModes, string(mode)) {
		return nil, nil, fmt.Errorf("enroll: the company allows %s tunnels, not %s", strings.Join(en.AllowedModes, " or "), mode)
	}
	addr, err := netip.ParsePrefix(en.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: address: %w", err)
	}
	gk, err := tunnel.ParsePublicKey(en.GatewayPublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: gateway key: %w", err)
	}
	gw, err := netip.ParseAddr(en.GatewayAddress)
	if err != nil {
		return nil, nil, fmt.Errorf("enroll: gateway address: %w", err)
	}
	company := []netip.Prefix{addr.Masked()}
	for _, c := range en.CompanyPrefixes {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, nil, fmt.Errorf("enroll: company prefix: %w", err)
		}
		company = append(company, p)
	}
	var dns []netip.Addr
	for _, d := range en.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, nil, fmt.Errorf("enroll: DNS: %w", err)
		}
		dns = append(dns, a)
	}
	if len(dns) == 0 {
		dns = []netip.Addr{gw}
	}
	plan, err := tunnel.Compute(tunnel.Policy{Mode: mode, Endpoints: []netip.Addr{endpoint}, CompanyPrefixes: company, CompanyDNS: dns, MTU: en.MTU})
	if err != nil {
		return nil, nil, err
	}
	cfg := &tunnel.Config{
		Interface: tunnel.Interface{PrivateKey: key, Addresses: []netip.Prefix{netip.PrefixFrom(addr.Addr(), addr.Addr().BitLen())}, DNS: dns},
		Peers:     []tunnel.Peer{{PublicKey: gk, Endpoint: en.Endpoint, AllowedIPs: plan.Routes, PersistentKeepalive: 25}},
	}
	return cfg, plan, nil
}

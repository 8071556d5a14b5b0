package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/proxy"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/gwapi/wgconf"
	"github.com/tetherwfh/tether/tunnel"
)

// Development tunnel addressing: the gateway at .1, clients from the /24.
var devTunnelAddr = netip.MustParsePrefix("10.99.0.1/24")

// configureWireGuard adds the userspace WireGuard endpoint to the dev
// gateway, with a fresh peer store in dir; its key comes with the
// secrets.
func (s *Stack) configureWireGuard(dir string, cfg *gateway.Config) error {
	port, err := freeUDPPort()
	if err != nil {
		return err
	}
	store := filepath.Join(dir, "peers.db")
	_ = os.Remove(store) // a fresh store each run, like the rest of the config
	s.wgPort = uint16(port)
	cfg.WireGuard = &gateway.WireGuardConfig{ListenPort: uint16(port), Address: devTunnelAddr,
		Endpoint: fmt.Sprintf("127.0.0.1:%d", port), Store: store, CompanyPrefixes: []netip.Prefix{devTunnelAddr.Masked()}}
	return nil
}

// connect enrolls this machine with the dev gateway, brings a userspace
// tunnel up, fetches the intranet page through it and resolves a blocked
// and a company name through the gateway's DNS inside the tunnel.
func (s *Stack) connect(ctx context.Context, dir string) error {
	tc, err := s.api.CreateToken(ctx, gwapi.TokenRequest{TTL: "10m", Uses: 1, Label: "make run"})
	if err != nil {
		return fmt.Errorf("creating an enrollment token: %w", err)
	}
	k, err := tunnel.GeneratePrivateKey()
	if err != nil {
		return err
	}
	if err := tunnel.WriteKeyFile(filepath.Join(dir, "client.key"), k); err != nil {
		return err
	}
	start := time.Now()
	en, err := s.api.Enroll(ctx, gwapi.EnrollRequest{Token: tc.Secret, PublicKey: k.Public().String(), Label: "make run"})
	if err != nil {
		return err
	}
	s.printf("[5/7] enrolled this machine with a single-use token in %d ms: tunnel address %s, gateway key %s…\n",
		time.Since(start).Milliseconds(), en.Address, en.GatewayPublicKey[:8])

	ep, err := tunnel.ResolveEndpoint(ctx, en.Endpoint)
	if err != nil {
		return err
	}
	cfg, plan, err := wgconf.FromEnrollment(k, en, tunnel.ModeSplit, ep.Addr())
	if err != nil {
		return err
	}
	gw := netip.MustParseAddr(en.GatewayAddress)
	u, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: tunnel.Options{Config: cfg, Plan: plan, Probe: gw},
		SOCKSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	start = time.Now()
	if err := u.Up(ctx); err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	s.tun = u
	for u.Status().Health != tunnel.HealthUp && time.Since(start) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if h := u.Status().Health; h != tunnel.HealthUp {
		return fmt.Errorf("the tunnel is %s after 10 s", h)
	}
	// The device's own handshake time, not when the health monitor
	// next looked.
	hs := u.Status().LastHandshake.Sub(start)

	// The intranet page, by name, through the SOCKS5 proxy as a browser
	// would use it: the name resolves through the tunnel's DNS.
	d, err := proxy.SOCKS5("tcp", u.SOCKSAddr().String(), nil, proxy.Direct)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Dial: d.Dial}}
	title := "(failed)"
	if resp, err := hc.Get("http://intranet.corp.test/"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if i, j := bytes.Index(b, []byte("<h1>")), bytes.Index(b, []byte("</h1>")); i >= 0 && j > i {
			title = string(b[i+4 : j])
		}
	} else {
		title = "(failed: " + err.Error() + ")"
	}
	s.printf("[6/7] tunnel up (userspace, split mode, routes %v): handshake in %.1f ms; http://intranet.corp.test/ through it: %q\n",
		plan.Routes, float64(hs.Microseconds())/1000, title)
	s.printf("      SOCKS5 proxy on %s, HTTP proxy on %s: try `curl --socks5-hostname %s http://intranet.corp.test/`\n",
		u.SOCKSAddr(), u.HTTPAddr(), u.SOCKSAddr())

	// DNS inside the tunnel.
	for _, name := range []string{"login.phishing.test.", "intranet.corp.test."} {
		s.printf("[7/7] %s\n", describe(name, s.askThroughTunnel(ctx, u, gw, name)))
	}
	s.printf("      the filtering DNS answers on %s inside the tunnel (and on %s for dig); `./bin/tether-gateway dns explain --config %s NAME` says why\n", gw, s.dnsAddr, s.gwConfig)
	return nil
}

type dnsResult struct {
	resp *dns.Msg
	err  error
}

func (s *Stack) askThroughTunnel(ctx context.Context, u *tunnel.Userspace, gw netip.Addr, name string) dnsResult {
	c, err := u.Net().DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(gw, 53))
	if err != nil {
		return dnsResult{err: err}
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, false)
	dc := &dns.Conn{Conn: c}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := dc.WriteMsg(q); err != nil {
		return dnsResult{err: err}
	}
	resp, err := dc.ReadMsg()
	return dnsResult{resp, err}
}

func describe(name string, r dnsResult) string {
	short := strings.TrimSuffix(name, ".")
	switch {
	case r.err != nil:
		return fmt.Sprintf("resolving %s through the tunnel failed: %v", short, r.err)
	case r.resp.Rcode != dns.RcodeSuccess:
		why := ""
		if opt := r.resp.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EDE); ok {
					why = fmt.Sprintf(" (EDE %d: %s)", e.InfoCode, e.ExtraText)
				}
			}
		}
		return fmt.Sprintf("%-22s %s%s", short, dns.RcodeToString[r.resp.Rcode], why)
	}
	var ips []string
	for _, rr := range r.resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return fmt.Sprintf("%-22s %s (from the company zone)", short, strings.Join(ips, ", "))
}

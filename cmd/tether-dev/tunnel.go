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

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag/report"
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

// story is the product's story, told through the daemon: enroll,
// diagnose, decide, connect; then the intranet and the filtering DNS
// through the tunnel the daemon brought up. Every step is a local API
// call, as `tether` makes them.
func (s *Stack) story(ctx context.Context) error {
	lc := &localapi.Client{Socket: s.socket}
	// The userspace engine, so no root is needed; Connect off until the
	// story's own `up`.
	if _, err := lc.SetSettings(ctx, localapi.Settings{Mode: localapi.ModeAuto, Engine: "userspace"}); err != nil {
		return fmt.Errorf("tetherd settings: %w", err)
	}

	tc, err := s.api.CreateToken(ctx, gwapi.TokenRequest{TTL: "10m", Uses: 1, Label: "make run"})
	if err != nil {
		return fmt.Errorf("creating an enrollment token: %w", err)
	}
	start := time.Now()
	st, err := lc.Enroll(ctx, localapi.EnrollRequest{URL: s.gatewayURL, Token: tc.Secret, Pin: s.pin, Label: "make run"})
	if err != nil {
		return fmt.Errorf("tether enroll: %w", err)
	}
	s.printf("[4/8] tether enroll: tetherd enrolled this machine with a single-use token in %d ms: peer %d, tunnel address %s (key and device credential 0600 in its state directory)\n",
		time.Since(start).Milliseconds(), st.Enrollment.PeerID, st.Enrollment.Address)

	// The diagnosis, its progress as the event stream carries it.
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		_ = lc.Watch(wctx, func(ev localapi.Event) error {
			if ev.Type == localapi.EventProgress && ev.Progress.Stage != "done" {
				s.printf("      … %s\n", ev.Progress.Text)
			}
			return nil
		})
	}()
	time.Sleep(100 * time.Millisecond) // the watcher is attached before the diagnosis starts
	start = time.Now()
	rep, err := lc.Diagnose(ctx, false)
	stopWatch()
	<-watched
	if err != nil {
		return fmt.Errorf("tether diag: %w", err)
	}
	s.printf("[5/8] tether diag: tetherd measured the line against the gateway in %.1f s:\n", time.Since(start).Seconds())
	_ = report.Render(s.opts.Out, &rep, report.Options{Parts: report.PartAll &^ report.PartTitle, Indent: "      "})

	start = time.Now()
	dec, err := lc.Up(ctx, localapi.ModeAuto)
	if err != nil {
		return fmt.Errorf("tether up: %w", err)
	}
	s.printf("[6/8] tether up: tetherd decided a %s tunnel:\n", dec.Mode)
	for _, r := range dec.Reasons {
		s.printf("      - %s (%s)\n", r.Text, r.ID)
	}
	for {
		if st, err = lc.Status(ctx); err != nil {
			return err
		}
		if st.State == localapi.StateConnected || time.Since(start) > 15*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.State != localapi.StateConnected {
		return fmt.Errorf("tetherd is %s 15 s after up: %s", st.State, st.Reason)
	}
	s.printf("      connected %.1f s after up (%s engine)\n", time.Since(start).Seconds(), st.Engine)
	if st.Proxies == nil || st.Proxies.SOCKS5 == "" {
		return fmt.Errorf("the userspace engine serves no SOCKS5 proxy")
	}

	// The intranet page, by name, through the daemon's SOCKS5 proxy as a
	// browser would use it: the name resolves through the tunnel.
	d, err := proxy.SOCKS5("tcp", st.Proxies.SOCKS5, nil, proxy.Direct)
	if err != nil {
		return err
	}
	cd := d.(proxy.ContextDialer)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: cd.DialContext}}
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
	s.printf("[7/8] http://intranet.corp.test/ through the tunnel: %q\n", title)
	s.printf("      SOCKS5 proxy on %s, HTTP proxy on %s: try `curl --socks5-hostname %s http://intranet.corp.test/`\n",
		st.Proxies.SOCKS5, st.Proxies.HTTP, st.Proxies.SOCKS5)

	// The filtering DNS inside the tunnel, over TCP through the proxy.
	gw := devTunnelAddr.Addr()
	for _, name := range []string{"login.phishing.test.", "intranet.corp.test."} {
		s.printf("[8/8] %s\n", describe(name, askThrough(ctx, cd, gw, name)))
	}
	s.printf("      the filtering DNS answers on %s inside the tunnel (and on %s for dig); `./bin/tether-gateway dns explain --config %s NAME` says why\n", gw, s.dnsAddr, s.gwConfig)
	return nil
}

type dnsResult struct {
	resp *dns.Msg
	err  error
}

// askThrough asks the gateway's resolver for name over DNS-over-TCP,
// dialed through the daemon's SOCKS5 proxy.
func askThrough(ctx context.Context, d proxy.ContextDialer, gw netip.Addr, name string) dnsResult {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(gw, 53).String())
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

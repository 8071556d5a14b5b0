package netdiag

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync"
	"time"

	"github.com/tetherwfh/tether/internal/wgprobe"
	"github.com/tetherwfh/tether/netdiag/report"
)

// Path check parameters.
const (
	// udpProbeTries and udpProbeWait: three probes, 300 ms apart, each
	// answered within a second on any working path.
	udpProbeTries = 3
	udpProbeGap   = 300 * time.Millisecond
	udpProbeWait  = time.Second
	// mtuLow and mtuHigh bound the path MTU search: IPv4's minimum
	// reassembly size every host must accept, and Ethernet's MTU.
	mtuLow  = 576
	mtuHigh = 1500
	// ipUDPOverhead is the IPv4 and UDP headers under a UDP payload.
	ipUDPOverhead = 28
	// wireGuardOverhead is what WireGuard adds over IPv6, the larger
	// family (40 IPv6 + 8 UDP + 32 WireGuard), as wg-quick assumes: its
	// default 1420 is 1500 - 80.
	wireGuardOverhead = 80
	// captiveTimeout bounds the captive-portal check, and publicTimeout
	// the public-address question: each is one small HTTP exchange.
	captiveTimeout = 3 * time.Second
	publicTimeout  = 3 * time.Second
)

// CGNAT is the shared address space carriers NAT their customers from
// (RFC 6598).
var CGNAT = netip.MustParsePrefix("100.64.0.0/10")

// udpReach sends wgprobe requests to the gateway's WireGuard port.
func (c *Client) udpReach(ctx context.Context, gw netip.Addr, port uint16) *report.UDPReport {
	r := &report.UDPReport{Port: port}
	conn, err := c.prober.dial(ctx, "udp", netip.AddrPortFrom(gw, port).String())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer conn.Close()
	sent := map[[8]byte]time.Time{}
	var mu sync.Mutex
	got := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			nonce, err := wgprobe.ParseAnswer(buf[:n])
			if err != nil {
				continue
			}
			mu.Lock()
			at, ok := sent[nonce]
			mu.Unlock()
			if ok {
				select {
				case got <- time.Since(at):
				default:
				}
				return
			}
		}
	}()
	deadline := time.Now().Add(time.Duration(udpProbeTries-1)*udpProbeGap + udpProbeWait)
	_ = conn.SetReadDeadline(deadline)
	tick := time.NewTicker(udpProbeGap)
	defer tick.Stop()
	for {
		if r.Sent < udpProbeTries {
			var nonce [8]byte
			_, _ = rand.Read(nonce[:])
			mu.Lock()
			sent[nonce] = time.Now()
			mu.Unlock()
			if _, err := conn.Write(wgprobe.Request(nonce)); err != nil && r.Error == "" {
				r.Error = err.Error()
			}
			r.Sent++
		}
		select {
		case rtt := <-got:
			r.Reachable, r.RTTMS, r.Error = true, ms(rtt), ""
			return r
		case <-tick.C:
			if time.Now().After(deadline) {
				if r.Error == "" {
					r.Error = fmt.Sprintf("no answer to %d probes on UDP port %d", r.Sent, port)
				}
				return r
			}
		case <-ctx.Done():
			r.Error = ctx.Err().Error()
			return r
		}
	}
}

// captive fetches the check URL without following redirects.
func (c *Client) captive(ctx context.Context, url string) *report.CaptiveReport {
	r := &report.CaptiveReport{URL: url}
	ctx, cancel := context.WithTimeout(ctx, captiveTimeout)
	defer cancel()
	hc := c.plainClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer hc.CloseIdleConnections()
	resp, err := get(ctx, hc, url)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	r.Status = resp.StatusCode
	if resp.StatusCode != http.StatusNoContent {
		r.Captive = true
		r.RedirectTo = resp.Header.Get("Location")
	}
	return r
}

// get is a GET with ctx.
func get(ctx context.Context, hc *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return hc.Do(req)
}

// maxIPAnswer bounds the /ip answer.
const maxIPAnswer = 4 << 10

// ParseIPAnswer reads the measurement service's /ip answer:
// {"ip": "...", "port": N}.
func ParseIPAnswer(b []byte) (netip.Addr, error) {
	var v struct {
		IP string `json:"ip"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return netip.Addr{}, fmt.Errorf("bad /ip answer: %w", err)
	}
	a, err := netip.ParseAddr(v.IP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad /ip answer: %w", err)
	}
	return a.Unmap(), nil
}

// publicAddr asks the gateway which address it sees, and compares it with
// the local address of the connection it saw.
func (c *Client) publicAddr(ctx context.Context) *report.PublicReport {
	r := &report.PublicReport{}
	ctx, cancel := context.WithTimeout(ctx, publicTimeout)
	defer cancel()
	hc := c.plainClient()
	defer hc.CloseIdleConnections()
	var local netip.Addr
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if ta, ok := i.Conn.LocalAddr().(*net.TCPAddr); ok {
			local = ta.AddrPort().Addr().Unmap()
		} else if ap, err := netip.ParseAddrPort(i.Conn.LocalAddr().String()); err == nil {
			local = ap.Addr().Unmap()
		}
	}}
	resp, err := get(httptrace.WithClientTrace(ctx, trace), hc, c.resolve(pathIP))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIPAnswer))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	pub, err := ParseIPAnswer(b)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Addr, r.Local = pub.String(), local.String()
	r.NAT = local.IsValid() && pub != local
	r.CGNAT = CGNAT.Contains(pub)
	return r
}

// ipv6 looks for a global IPv6 address and tries the gateway over IPv6.
func (c *Client) ipv6(ctx context.Context, gwHost string, port int) *report.IPv6Report {
	r := &report.IPv6Report{}
	_ = c.cfg.Netns.run(func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(pn.IP)
				if ip.Is6() && !ip.Is4In6() && ip.IsGlobalUnicast() && !ip.IsPrivate() {
					r.GlobalAddr = true
				}
			}
		}
		return nil
	})
	var v6 []netip.Addr
	if a, err := netip.ParseAddr(gwHost); err == nil {
		if a.Is6() && !a.Is4In6() {
			v6 = []netip.Addr{a}
		}
	} else {
		_ = c.cfg.Netns.run(func() error {
			as, err := c.prober.resolver().LookupNetIP(ctx, "ip6", gwHost)
			v6 = as
			return err
		})
	}
	if len(v6) == 0 {
		return r // unknown: the gateway has no IPv6 address
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := c.prober.dial(dctx, "tcp", netip.AddrPortFrom(v6[0], uint16(port)).String())
	if err == nil {
		conn.Close()
	}
	r.GatewayReachable = yes(err == nil)
	return r
}

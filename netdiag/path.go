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

// PathReport is what lies between this host and the gateway.
type PathReport struct {
	UDP *UDPReport `json:"udp,omitempty"`
	// Loss is UDP loss to the gateway from a longer STAMP series than the
	// latency probes: UDP is what the tunnel carries, and networks police
	// it apart from ICMP.
	Loss    *LossReport    `json:"udp_loss,omitempty"`
	MTU     *MTUReport     `json:"mtu,omitempty"`
	Captive *CaptiveReport `json:"captive_portal,omitempty"`
	Public  *PublicReport  `json:"public_address,omitempty"`
	IPv6    *IPv6Report    `json:"ipv6,omitempty"`
}

// UDPReport is whether UDP reaches the gateway's WireGuard port.
type UDPReport struct {
	Port      uint16  `json:"port"`
	Reachable bool    `json:"reachable"`
	RTTMS     float64 `json:"rtt_ms,omitempty"`
	Sent      int     `json:"sent"`
	Error     string  `json:"error,omitempty"`
}

// LossReport is loss over many probes.
type LossReport struct {
	Method   string  `json:"method"`
	Sent     int     `json:"sent"`
	LossPct  float64 `json:"loss_pct"`
	MedianMS float64 `json:"median_ms"`
	// MinMS is the fastest round trip: with the median, how far a queue
	// other traffic keeps stands above the line's own delay.
	MinMS float64 `json:"min_ms"`
}

// MTUReport is the path MTU toward the gateway and the tunnel MTU that
// fits inside it.
type MTUReport struct {
	// PathMTU is the largest IPv4 packet that reached the gateway and came
	// back, with DF set: STAMP packets padded to size, echoed at the same
	// size by the gateway's reflector.
	PathMTU int `json:"path_mtu"`
	// TunnelMTU is PathMTU less WireGuard's overhead: 80 bytes, the IPv6
	// worst case, as wg-quick reckons (1500 gives its default 1420), so
	// the tunnel still fits if the endpoint moves to IPv6.
	TunnelMTU int    `json:"tunnel_mtu"`
	Error     string `json:"error,omitempty"`
}

// CaptiveReport is the captive-portal check: a URL that answers 204 No
// Content on an open network.
type CaptiveReport struct {
	URL     string `json:"url"`
	Captive bool   `json:"captive"`
	Status  int    `json:"status,omitempty"`
	// RedirectTo is where a portal sent the request.
	RedirectTo string `json:"redirect_to,omitempty"`
	Error      string `json:"error,omitempty"`
}

// PublicReport is this host's address as the gateway sees it.
type PublicReport struct {
	Addr  string `json:"addr"`
	Local string `json:"local"`
	// NAT: the gateway sees another address than the one we sent from.
	NAT bool `json:"nat"`
	// CGNAT: the address the gateway sees is in 100.64.0.0/10, the
	// carrier-grade NAT range.
	CGNAT bool   `json:"cgnat"`
	Error string `json:"error,omitempty"`
}

// IPv6Report is whether this host has IPv6 that reaches anywhere.
type IPv6Report struct {
	// GlobalAddr: some interface has a global unicast IPv6 address (not
	// link-local, not unique-local).
	GlobalAddr bool `json:"global_addr"`
	// GatewayReachable: a TCP connection to the gateway over IPv6
	// worked; unknown (absent) when the gateway has no IPv6 address.
	GatewayReachable *bool `json:"gateway_reachable,omitempty"`
}

// udpReach sends wgprobe requests to the gateway's WireGuard port.
func (c *Client) udpReach(ctx context.Context, gw netip.Addr, port uint16) *UDPReport {
	r := &UDPReport{Port: port}
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
func (c *Client) captive(ctx context.Context, url string) *CaptiveReport {
	r := &CaptiveReport{URL: url}
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
func (c *Client) publicAddr(ctx context.Context) *PublicReport {
	r := &PublicReport{}
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
func (c *Client) ipv6(ctx context.Context, gwHost string, port int) *IPv6Report {
	r := &IPv6Report{}
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
			as, err := net.DefaultResolver.LookupNetIP(ctx, "ip6", gwHost)
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

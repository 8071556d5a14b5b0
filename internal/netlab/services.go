package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Service timeouts.
const (
	// dnsForwardTimeout bounds the home router's forwarding of one query;
	// typical stub resolvers retry after 1-5 s, so 2 s keeps it answerable.
	dnsForwardTimeout = 2 * time.Second
	// httpHeaderTimeout guards the lab's HTTP servers against stuck clients.
	httpHeaderTimeout = 5 * time.Second
	// loadChunk is the write size of the bulk load server.
	loadChunk = 64 << 10
)

// Names the lab's DNS knows. The internet's upstream answers these; any
// other name gets NXDOMAIN with the zone's SOA, as an authoritative server
// would.
const (
	WebName     = "web.internet.test."
	GatewayName = "gateway.tether.test."
	SpeedName   = "speed.internet.test."
	BigName     = "big.internet.test." // a TXT answer larger than 1232 bytes
	PhishName   = "phishing.test."     // exists upstream; the company resolver must block it
	PortalName  = "portal.isp.test."   // the captive portal's login host
)

func (l *Lab) startServices(ctx context.Context) error {
	l.dns = newDNSServer()
	for _, rr := range []string{
		WebName + " 300 IN A " + WebAddr.String(),
		GatewayName + " 300 IN A " + GatewayAddr.String(),
		SpeedName + " 300 IN A " + SpeedAddr.String(),
		PhishName + " 300 IN A 198.18.0.66",
	} {
		if err := l.dns.add(rr); err != nil {
			return err
		}
	}
	var txt []string
	for i := 0; i < 12; i++ {
		txt = append(txt, fmt.Sprintf("%q", strings.Repeat(string(rune('a'+i)), 200)))
	}
	if err := l.dns.add(BigName + " 300 IN TXT " + strings.Join(txt, " ")); err != nil {
		return err
	}
	if err := l.serveDNS(ctx, l.Internet, netip.AddrPortFrom(DNSAddr, 53), l.dns); err != nil {
		return err
	}
	if err := l.serveDNS(ctx, l.ISP, netip.AddrPortFrom(HomeRouterAddr, 53), l.homeRouterResolver()); err != nil {
		return err
	}
	if err := l.serveHTTP(l.Internet, netip.AddrPortFrom(WebAddr, WebPort), internetWeb()); err != nil {
		return err
	}
	if l.Profile.CaptivePortal {
		if err := l.serveHTTP(l.ISP, netip.AddrPortFrom(HomeRouterAddr, PortalPort), captivePortal()); err != nil {
			return err
		}
	}
	if err := l.serveLoad(); err != nil {
		return err
	}
	if err := l.serveEcho(); err != nil {
		return err
	}
	if im := l.Profile.Impair; im != nil {
		for _, port := range []uint16{WireGuardPort, STAMPPort} {
			if _, err := l.ImpairUDP(ctx, netip.AddrPortFrom(GatewayAddr, port), *im); err != nil {
				return err
			}
		}
	}
	if bg := l.Profile.Background; bg != nil {
		if err := l.StartLoad(bg.DownStreams, bg.UpStreams); err != nil {
			return err
		}
	}
	return nil
}

// AddDNSRecord adds a record, in zone-file syntax, to the internet's
// upstream DNS server.
func (l *Lab) AddDNSRecord(rr string) error { return l.dns.add(rr) }

// dnsServer is a tiny authoritative server for the lab's names.
type dnsServer struct {
	mu      sync.RWMutex
	records map[string][]dns.RR // by lower-case FQDN
}

func newDNSServer() *dnsServer { return &dnsServer{records: map[string][]dns.RR{}} }

func (s *dnsServer) add(text string) error {
	rr, err := dns.NewRR(text)
	if err != nil {
		return fmt.Errorf("netlab: dns record %q: %w", text, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	s.records[name] = append(s.records[name], rr)
	return nil
}

func (s *dnsServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	if len(r.Question) != 1 {
		m.SetRcode(r, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	s.mu.RLock()
	rrs, ok := s.records[strings.ToLower(q.Name)]
	s.mu.RUnlock()
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if len(m.Answer) == 0 {
		soa, _ := dns.NewRR("test. 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60")
		m.Ns = append(m.Ns, soa)
	}
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), false)
	}
	size := dns.MinMsgSize
	if o := r.IsEdns0(); o != nil {
		size = int(o.UDPSize())
	}
	if _, isTCP := w.RemoteAddr().(*net.TCPAddr); !isTCP {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// homeRouterResolver forwards to the internet's DNS from the ISP box, the
// way a home router's DNS proxy does. With DNSHijack it turns NXDOMAIN for
// A queries into the assist page's address.
func (l *Lab) homeRouterResolver() dns.Handler {
	hijack := l.Profile.DNSHijack
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if len(r.Question) == 1 && strings.EqualFold(r.Question[0].Name, PortalName) && l.Profile.CaptivePortal {
			m := new(dns.Msg).SetReply(r)
			rr, _ := dns.NewRR(PortalName + " 60 IN A " + HomeRouterAddr.String())
			m.Answer = append(m.Answer, rr)
			_ = w.WriteMsg(m)
			return
		}
		_, isTCP := w.RemoteAddr().(*net.TCPAddr)
		network := "udp"
		if isTCP {
			network = "tcp"
		}
		ctx, cancel := context.WithTimeout(l.ctx, dnsForwardTimeout)
		defer cancel()
		resp, err := l.forwardDNS(ctx, network, r)
		if err != nil {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return
		}
		if hijack && resp.Rcode == dns.RcodeNameError && len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			resp.Rcode = dns.RcodeSuccess
			resp.Ns = nil
			rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A " + AssistAddr.String())
			resp.Answer = []dns.RR{rr}
		}
		_ = w.WriteMsg(resp)
	})
}

func (l *Lab) forwardDNS(ctx context.Context, network string, r *dns.Msg) (*dns.Msg, error) {
	c, err := l.ISP.DialContext(ctx, network, netip.AddrPortFrom(DNSAddr, 53).String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	client := &dns.Client{Net: network, UDPSize: dns.DefaultMsgSize}
	resp, _, err := client.ExchangeWithConnContext(ctx, r, &dns.Conn{Conn: c, UDPSize: dns.DefaultMsgSize})
	return resp, err
}

// serveDNS serves h on addr over UDP and TCP, and returns once both
// servers run: miekg/dns refuses to shut down a server that has not
// started yet, so a lab closed at once would wait on it for ever.
func (l *Lab) serveDNS(ctx context.Context, ns *Namespace, addr netip.AddrPort, h dns.Handler) error {
	pc, err := ns.ListenPacket("udp", addr.String())
	if err != nil {
		return err
	}
	ln, err := ns.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		return err
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started, failed := make(chan struct{}), make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		l.Go(func(context.Context) { failed <- srv.ActivateAndServe() })
		select {
		case <-started:
			l.addCloser(closerFunc(srv.Shutdown))
		case err := <-failed:
			pc.Close()
			ln.Close()
			return fmt.Errorf("netlab: dns on %s: %w", addr, err)
		case <-ctx.Done():
			pc.Close()
			ln.Close()
			return fmt.Errorf("netlab: dns on %s did not start: %w", addr, ctx.Err())
		}
	}
	return nil
}

func internetWeb() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/generate_204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/ip", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Tether lab: internet web server")
	})
	return mux
}

// captivePortal answers every request with a redirect to its login page,
// as hotspot portals do, and serves the login page itself.
func captivePortal() http.Handler {
	login := "http://" + strings.TrimSuffix(PortalName, ".") + "/login"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintln(w, "<html><body><h1>Welcome to HotelNet</h1><form>Room number: <input></form></body></html>")
			return
		}
		http.Redirect(w, r, login, http.StatusFound)
	})
}

func (l *Lab) serveHTTP(ns *Namespace, addr netip.AddrPort, h http.Handler) error {
	ln, err := ns.Listen("tcp", addr.String())
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: httpHeaderTimeout}
	l.addCloser(srv)
	l.Go(func(context.Context) { _ = srv.Serve(ln) })
	return nil
}

// serveLoad runs the internet's bulk server: a client sends 'D' to receive
// an endless stream or 'U' to send one.
func (l *Lab) serveLoad() error {
	ln, err := l.Internet.Listen("tcp", netip.AddrPortFrom(SpeedAddr, LoadPort).String())
	if err != nil {
		return err
	}
	l.addCloser(ln)
	var conns sync.Map
	l.addCloser(closerFunc(func() error {
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		return nil
	}))
	l.Go(func(ctx context.Context) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, struct{}{})
			l.Go(func(ctx context.Context) {
				defer conns.Delete(c)
				defer c.Close()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				cmd := make([]byte, 1)
				if _, err := io.ReadFull(c, cmd); err != nil {
					return
				}
				switch cmd[0] {
				case 'D':
					buf := make([]byte, loadChunk)
					for ctx.Err() == nil {
						if _, err := c.Write(buf); err != nil {
							return
						}
					}
				case 'U':
					_, _ = io.Copy(io.Discard, c)
				}
			})
		}
	})
	return nil
}

// LoadStats counts what background load moved.
type LoadStats struct{ DownBytes, UpBytes atomic.Int64 }

// StartLoad starts bulk TCP streams from the neighbor (someone else on
// the home's LAN) through the ISP box to the internet's load server,
// until the lab closes. It returns once every stream is connected.
func (l *Lab) StartLoad(down, up int) error {
	_, err := l.StartLoadFrom(l.Neighbor, down, up)
	return err
}

// StartLoadFrom is StartLoad from ns (the home itself, for a client's own
// transfers); stop ends the streams before the lab closes.
func (l *Lab) StartLoadFrom(ns *Namespace, down, up int) (stop func(), err error) {
	addr := netip.AddrPortFrom(SpeedAddr, LoadPort).String()
	var conns []net.Conn
	stop = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i := 0; i < down+up; i++ {
		cmd := byte('D')
		if i >= down {
			cmd = 'U'
		}
		ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
		c, err := ns.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			stop()
			return nil, fmt.Errorf("netlab: background load: %w", err)
		}
		if _, err := c.Write([]byte{cmd}); err != nil {
			c.Close()
			stop()
			return nil, fmt.Errorf("netlab: background load: %w", err)
		}
		conns = append(conns, c)
		l.addCloser(c)
		l.Go(func(ctx context.Context) {
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if cmd == 'D' {
				_, _ = io.Copy(io.Discard, c)
				return
			}
			buf := make([]byte, loadChunk)
			for ctx.Err() == nil {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		})
	}
	return stop, nil
}

// serveEcho runs a UDP echo server (RFC 862) on the internet's speed host,
// for RTT checks that need no ICMP.
func (l *Lab) serveEcho() error {
	pc, err := l.Internet.ListenPacket("udp", netip.AddrPortFrom(SpeedAddr, EchoPort).String())
	if err != nil {
		return err
	}
	l.addCloser(pc)
	l.Go(func(context.Context) { EchoUDP(pc) })
	return nil
}

// EchoUDP answers every datagram on pc with itself (RFC 862) until pc
// closes. Tests use it for company hosts and UDP targets.
func EchoUDP(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], addr)
	}
}

// EchoPort is the UDP echo service's port (RFC 862).
const EchoPort = 7

// relayPortBase offsets the ISP box's local relay ports from the ports
// they stand in for.
const relayPortBase = 30000

var relayPorts atomic.Int32

// ImpairUDP diverts home's UDP to dst through a userspace relay on the ISP
// box that applies im in both directions. The divert is a DNAT, so the
// client still sends to and hears from dst itself.
func (l *Lab) ImpairUDP(ctx context.Context, dst netip.AddrPort, im Impairment) (*Relay, error) {
	port := relayPortBase + int(relayPorts.Add(1))
	front, err := l.ISP.ListenPacket("udp", netip.AddrPortFrom(HomeRouterAddr, uint16(port)).String())
	if err != nil {
		return nil, err
	}
	r, err := NewRelay(front, RelayConfig{
		Target:         dst,
		Impairment:     im,
		ListenUpstream: func() (net.PacketConn, error) { return l.ISP.ListenPacket("udp", ":0") },
		Logger:         l.logger,
	})
	if err != nil {
		front.Close()
		return nil, err
	}
	l.addCloser(r)
	rule := fmt.Sprintf("add rule ip tetherlab prerouting iifname %q ip daddr %s udp dport %d dnat to %s:%d\n",
		IfISPHome, dst.Addr(), dst.Port(), HomeRouterAddr, port)
	if err := l.ISP.nft(ctx, rule); err != nil {
		return nil, err
	}
	return r, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

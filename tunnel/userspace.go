package tunnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// UserspaceOptions configure the userspace engine.
type UserspaceOptions struct {
	Options
	// SOCKSListen and HTTPListen are loopback addresses for the SOCKS5
	// and HTTP proxies ("127.0.0.1:1080"); empty means no such proxy. Port
	// 0 picks a free port (see SOCKSAddr and HTTPAddr).
	SOCKSListen string
	HTTPListen  string
	// DNSListen is a loopback UDP address that forwards queries through
	// the tunnel to the plan's first DNS server; empty means none.
	DNSListen string
	// Bind carries WireGuard's UDP; nil means the host's sockets.
	Bind conn.Bind
	// Direct dials destinations outside the plan's routes (split mode).
	// Nil means the host network.
	Direct dialFunc
	// Forward, when set, relays peers' traffic to the host network: the
	// gateway's subnet router. Nil forwards nothing.
	Forward *Forward
}

// Userspace is wireguard-go on gVisor's netstack: no TUN device, no root,
// no change to the host's routes or DNS. Applications reach the tunnel
// through the loopback proxies, and Go code through Net.
type Userspace struct {
	core wgCore
	uo   UserspaceOptions

	mu   sync.Mutex
	tnet *netstack.Net
	// live is tnet for the monitor and the proxies, which must not take
	// mu: Down holds mu while it waits for them to finish.
	live    atomic.Pointer[netstack.Net]
	proxies *proxyServer
	dns     net.PacketConn
	dnsDone chan struct{} // closed when serveDNS returns
	socks   net.Addr
	httpA   net.Addr
	fwd     *forwarder
}

var _ Tunnel = (*Userspace)(nil)

// NewUserspace checks the options and returns an engine that is down.
func NewUserspace(o UserspaceOptions) (*Userspace, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	for _, l := range []string{o.SOCKSListen, o.HTTPListen, o.DNSListen} {
		if l == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			return nil, fmt.Errorf("tunnel: listen address %q: %w", l, err)
		}
		if !ap.Addr().IsLoopback() {
			// The proxies have no authentication: loopback only.
			return nil, fmt.Errorf("tunnel: listen address %s is not loopback; the proxies only listen on loopback", l)
		}
	}
	if o.DNSListen != "" && len(o.Plan.DNS) == 0 {
		return nil, errors.New("tunnel: a DNS listener needs a DNS server in the plan")
	}
	u := &Userspace{uo: o}
	u.core = wgCore{opts: o.Options, engine: "userspace", log: o.Logger.With("engine", "userspace")}
	return u, nil
}

// Up starts wireguard-go on a fresh netstack, then the proxies.
func (u *Userspace) Up(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tnet != nil {
		return errors.New("tunnel: already up")
	}
	var local []netip.Addr
	for _, p := range u.uo.Config.Interface.Addresses {
		local = append(local, p.Addr())
	}
	tdev, tnet, err := netstack.CreateNetTUN(local, u.uo.Plan.DNS, u.uo.Plan.MTU)
	if err != nil {
		return fmt.Errorf("tunnel: creating the netstack: %w", err)
	}
	safe, err := safeNetstack(tdev, tnet)
	if err != nil {
		tdev.Close()
		return err
	}
	tdev = safe
	if u.uo.Forward != nil {
		f, err := startForwarder(tnet, local, *u.uo.Forward, u.core.log)
		if err != nil {
			tdev.Close()
			return err
		}
		u.fwd = f
	}
	bind := u.uo.Bind
	if bind == nil {
		bind = conn.NewDefaultBind()
	}
	if err := u.core.startDevice(ctx, tdev, bind); err != nil {
		tdev.Close()
		if u.fwd != nil {
			u.fwd.close()
			u.fwd = nil
		}
		return err
	}
	u.tnet = tnet
	u.live.Store(tnet)
	if err := u.startListeners(); err != nil {
		return errors.Join(err, u.downLocked(context.WithoutCancel(ctx)))
	}
	u.core.startMonitor(u.Ping)
	attrs := []any{"mode", u.uo.Plan.Mode, "routes", len(u.uo.Plan.Routes)}
	if u.socks != nil {
		attrs = append(attrs, "socks", u.socks.String())
	}
	if u.httpA != nil {
		attrs = append(attrs, "http", u.httpA.String())
	}
	u.core.log.Info("tunnel up", attrs...)
	return nil
}

func (u *Userspace) startListeners() error {
	u.proxies = newProxyServer(u.DialContext, u.core.log)
	if u.uo.SOCKSListen != "" {
		ln, err := net.Listen("tcp", u.uo.SOCKSListen)
		if err != nil {
			return fmt.Errorf("tunnel: SOCKS5 listener: %w", err)
		}
		u.socks = ln.Addr()
		u.proxies.serveSOCKS(ln)
	}
	if u.uo.HTTPListen != "" {
		ln, err := net.Listen("tcp", u.uo.HTTPListen)
		if err != nil {
			return fmt.Errorf("tunnel: HTTP proxy listener: %w", err)
		}
		u.httpA = ln.Addr()
		u.proxies.serveHTTP(ln)
	}
	if u.uo.DNSListen != "" {
		pc, err := net.ListenPacket("udp", u.uo.DNSListen)
		if err != nil {
			return fmt.Errorf("tunnel: DNS listener: %w", err)
		}
		u.dns, u.dnsDone = pc, make(chan struct{})
		go u.serveDNS(pc, u.tnet, netip.AddrPortFrom(u.uo.Plan.DNS[0], 53), u.dnsDone)
	}
	return nil
}

// downTimeout bounds how long Down waits for the proxies, the DNS
// forwarder and the forwarder to end. Down first closes every socket
// they hold, upstream ones included, with an expired deadline, so they
// end at once; this bound only keeps a stop (Ctrl-C, SIGTERM, systemd's
// stop) from hanging if one still does not. With the health monitor's
// last probe (at most a second) it keeps Down under 3 s.
const downTimeout = 2 * time.Second

// Down stops the proxies, the DNS forwarder, the forwarder and the
// device. It waits for the goroutines serving them until ctx ends or for
// downTimeout at most, then closes the device regardless; its error names
// whatever had not ended by then. Idempotent.
func (u *Userspace) Down(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.downLocked(ctx)
}

func (u *Userspace) downLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, downTimeout, fmt.Errorf("gave up after %v", downTimeout))
	defer cancel()
	var errs []error
	if u.proxies != nil {
		errs = append(errs, u.proxies.close(ctx))
		u.proxies = nil
	}
	if u.dns != nil {
		u.dns.Close()
		errs = append(errs, waitUntil(ctx, u.dnsDone, "the DNS forwarder's queries"))
		u.dns, u.dnsDone = nil, nil
	}
	if u.fwd != nil {
		f, done := u.fwd, make(chan struct{})
		go func() {
			defer close(done)
			f.close()
		}()
		errs = append(errs, waitUntil(ctx, done, "the forwarded flows"))
		u.fwd = nil
	}
	u.core.closeDevice()
	u.live.Store(nil)
	if u.tnet != nil {
		u.core.log.Info("tunnel down")
	}
	u.tnet = nil
	u.socks, u.httpA = nil, nil
	err := errors.Join(errs...)
	if err != nil {
		u.core.log.Warn("tunnel down, leaving work behind", "err", err)
	}
	return err
}

// Status reports health and counters.
func (u *Userspace) Status() Status { return u.core.status() }

// Net is the tunnel's network stack, for Go code that dials or listens
// inside the tunnel. Nil while down.
func (u *Userspace) Net() *netstack.Net {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.tnet
}

// ForwardStats counts the subnet router's flows; zero when forwarding
// is off or the engine is down.
func (u *Userspace) ForwardStats() ForwardStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fwd == nil {
		return ForwardStats{}
	}
	return u.fwd.stats()
}

// SOCKSAddr and HTTPAddr are where the proxies listen; nil when off.
func (u *Userspace) SOCKSAddr() net.Addr { u.mu.Lock(); defer u.mu.Unlock(); return u.socks }
func (u *Userspace) HTTPAddr() net.Addr  { u.mu.Lock(); defer u.mu.Unlock(); return u.httpA }

// DNSAddr is where the DNS forwarder listens; nil when off.
func (u *Userspace) DNSAddr() net.Addr {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dns == nil {
		return nil
	}
	return u.dns.LocalAddr()
}

// DialContext connects as the plan routes: through the tunnel when the
// plan routes the destination there, directly (Direct) otherwise. Names
// resolve through the tunnel's DNS when the plan has one, so a company
// name never leaks to the ISP. The proxies dial with it.
func (u *Userspace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	tnet, plan := u.live.Load(), u.uo.Plan
	if tnet == nil {
		return nil, errors.New("tunnel: down")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadTarget, err)
	}
	var ips []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{a.Unmap()}
	} else if len(plan.DNS) > 0 {
		names, err := tnet.LookupContextHost(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s through the tunnel: %w", host, err)
		}
		for _, n := range names {
			if a, err := netip.ParseAddr(n); err == nil {
				ips = append(ips, a.Unmap())
			}
		}
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
	}
	var errs []error
	for _, ip := range ips {
		target := net.JoinHostPort(ip.Unmap().String(), port)
		var c net.Conn
		if plan.Contains(ip) {
			c, err = tnet.DialContext(ctx, network, target)
			if err == nil {
				c = abortable(c)
			}
		} else if u.uo.Direct != nil {
			c, err = u.uo.Direct(ctx, network, target)
		} else {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, target)
		}
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no address for %s", host)
	}
	return nil, errors.Join(errs...)
}

// maxDNSMessage is the largest DNS message over UDP (RFC 1035 limits the
// length field to 16 bits).
const maxDNSMessage = 65535

// DNS forwarder limits.
const (
	// dnsForwardTimeout is how long one query waits for its answer: a
	// stub resolver's own timeout (resolv.conf's default, 5 s), after
	// which the application has retried anyway.
	dnsForwardTimeout = 5 * time.Second
	// maxDNSInFlight bounds the queries waiting on the tunnel; beyond it
	// queries are dropped and the application retries.
	maxDNSInFlight = 256
)

// serveDNS forwards each query on pc to server through the tunnel and
// sends back the answer. The forwarder is byte-for-byte: it never parses
// or rewrites, so DNSSEC and EDNS options pass untouched. Once pc closes,
// queries still waiting on the tunnel end at once, then done is closed.
func (u *Userspace) serveDNS(pc net.PacketConn, tnet *netstack.Net, server netip.AddrPort, done chan<- struct{}) {
	defer close(done)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	closed, cancel := context.WithCancel(context.Background())
	defer cancel()
	sem := make(chan struct{}, maxDNSInFlight)
	for {
		buf := make([]byte, maxDNSMessage)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // overloaded: let the client retry
		}
		inflight.Add(1)
		go func(q []byte) {
			defer inflight.Done()
			defer func() { <-sem }()
			c, err := tnet.DialUDPAddrPort(netip.AddrPort{}, server)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(dnsForwardTimeout))
			defer context.AfterFunc(closed, func() { _ = c.SetDeadline(time.Unix(1, 0)) })()
			if _, err := c.Write(q); err != nil {
				return
			}
			ans := make([]byte, maxDNSMessage)
			m, err := c.Read(ans)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(ans[:m], from)
		}(buf[:n])
	}
}

// Ping sends one ICMP echo through the tunnel to dst and waits for the
// reply until ctx ends. The health monitor uses it; so can callers.
func (u *Userspace) Ping(ctx context.Context, dst netip.Addr) (time.Duration, error) {
	tnet := u.live.Load()
	if tnet == nil {
		return 0, errors.New("down")
	}
	pc, err := tnet.DialPingAddr(netip.Addr{}, dst)
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return echo(ctx, pc, dst, false)
}

// echo sends one ICMP echo request on c and waits for the matching reply.
// raw is set for raw IP sockets, where the kernel doesn't filter by ID.
func echo(ctx context.Context, c net.Conn, dst netip.Addr, raw bool) (time.Duration, error) {
	id, seq := rand.IntN(0xffff), rand.IntN(0xffff)
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("tether-probe")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// Cancelling ctx ends the wait too, so stopping the health monitor
	// never waits out a probe.
	defer context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })()
	start := time.Now()
	if _, err := c.Write(b); err != nil {
		return 0, err
	}
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return 0, err
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == seq && (!raw || e.ID == id) {
			return time.Since(start), nil
		}
	}
}

// ListenPort is the UDP port WireGuard listens on; 0 while down.
func (u *Userspace) ListenPort() uint16 { return u.core.listenPort() }

// SetPeer admits or updates a peer on the running tunnel.
func (u *Userspace) SetPeer(ctx context.Context, p Peer) error { return u.core.setPeer(ctx, p) }

// RemovePeer drops a peer from the running tunnel at once.
func (u *Userspace) RemovePeer(pk PublicKey) error { return u.core.removePeer(pk) }

// PeerStats reports every peer's handshake and counters.
func (u *Userspace) PeerStats() ([]PeerStats, error) { return u.core.peerStats() }

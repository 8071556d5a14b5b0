// Package udpguard decides whether a UDP responder (the STAMP reflector,
// the WireGuard port's probe responder) may answer a datagram's source.
//
// A UDP source address is whatever the sender wrote, so a responder that
// answers everything can be aimed at anything: at itself, at another
// responder that answers back (the "Loop DoS" class, CVE-2024-2169), or
// at a victim. A Guard refuses the sources that cannot be a client:
//
//   - unspecified, reserved, multicast and broadcast addresses, and any
//     packet sent to a multicast or broadcast address (one request would
//     draw an answer from every responder on the link);
//   - this host's own addresses: the packet's destination, the
//     interfaces' addresses, and loopback unless the packet arrived on
//     loopback (where the address cannot tell a local client from the
//     responder itself, so the port rules below carry the weight; the
//     kernel delivers a loopback source from nowhere but this host);
//   - the responder's own ports, and server ports: every port below 1024
//     (clients send from ephemeral ports, and NATs map them to ports
//     above 1023) and the well-known reflecting services above it;
//
// then limits the rest per source network (keyrate: IPv6 by /64) and in
// total, so no source, and no set of sources, gets unbounded answers.
//
// Boundaries: udpguard imports nothing of the product but keyrate, so
// both netdiag and tunnel can use it.
package udpguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"go4.org/netipx"
	"golang.org/x/time/rate"

	"github.com/tetherwfh/tether/internal/keyrate"
)

// Why a source is refused. Check returns one of them as is (no
// allocation per packet under a flood); callers count ErrRateLimited
// apart from the others.
var (
	ErrUnspecified = errors.New("udpguard: unspecified or reserved address")
	ErrMulticast   = errors.New("udpguard: multicast or broadcast address")
	ErrOwnAddress  = errors.New("udpguard: the source is this host")
	ErrOwnPort     = errors.New("udpguard: the source port is the responder's own")
	ErrServicePort = errors.New("udpguard: the source port is a server's, not a client's")
	ErrRateLimited = errors.New("udpguard: over the rate limit")
)

// LocalRefresh is how long the host's interface addresses are cached: an
// address added since is missed for at most this long, while reading them
// (a netlink dump) stays off the per-packet path.
const LocalRefresh = 10 * time.Second

// reflectingPorts are well-known UDP services above 1023 that answer
// unauthenticated datagrams, so a source on one of them is the other half
// of a loop rather than a client. Ports inside the common ephemeral
// ranges (Linux 32768-60999, others 49152-65535) are left out, since a
// real client lands on them by chance: WireGuard's 51820 among them,
// which the WireGuard responder refuses as its own port instead.
var reflectingPorts = map[uint16]string{
	1900:  "SSDP",
	3283:  "Apple Remote Desktop",
	3478:  "STUN",
	3702:  "WS-Discovery",
	5060:  "SIP",
	5353:  "mDNS",
	5355:  "LLMNR",
	5683:  "CoAP",
	10001: "Ubiquiti discovery",
	11211: "memcached",
}

// ServicePort reports whether p is a server's port, never a client's:
// zero, every port below 1024, and the reflecting services above it.
func ServicePort(p uint16) bool {
	if p < 1024 {
		return true
	}
	_, ok := reflectingPorts[p]
	return ok
}

// Limits bound a responder's answers. Rates must be positive and bursts
// at least 1.
type Limits struct {
	// PerSource and PerSourceBurst: answers per second, and at once, to
	// one source network (keyrate.Key: an IPv4 address, an IPv6 /64).
	PerSource, PerSourceBurst float64
	// Total and TotalBurst: answers per second, and at once, to all
	// sources together, however many the flood rotates through.
	Total, TotalBurst float64
}

// Config configures a Guard.
type Config struct {
	Limits
	// Ports are the responder's own: the port it listens on and its
	// protocol's well-known port. A source on one is the responder
	// itself or another instance of it.
	Ports []uint16
	// Listen is the address the responder's socket is bound to: an
	// unspecified address for a wildcard socket, the invalid Addr when
	// unknown. When a datagram's destination is unknown, a loopback
	// source is answered only if Listen covers loopback.
	Listen netip.Addr
	// LocalAddrs returns the host's interface prefixes; nil means the
	// interfaces' (net.InterfaceAddrs), re-read every LocalRefresh.
	LocalAddrs func() ([]netip.Prefix, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Guard applies the rules. Safe for concurrent use.
type Guard struct {
	ports      map[uint16]bool
	listen     netip.Addr
	localAddrs func() ([]netip.Prefix, error)
	now        func() time.Time
	perSource  *keyrate.Limiter
	total      *rate.Limiter

	mu      sync.Mutex
	local   map[netip.Addr]bool // the interfaces' addresses
	bcast   map[netip.Addr]bool // their IPv4 subnets' broadcast addresses
	readAt  time.Time
	readErr error
}

// New returns a guard for cfg.
func New(cfg Config) (*Guard, error) {
	l := cfg.Limits
	if !(l.PerSource > 0 && l.PerSourceBurst >= 1 && l.Total > 0 && l.TotalBurst >= 1) {
		return nil, fmt.Errorf("udpguard: rates must be positive and bursts at least 1 (got %+v)", l)
	}
	g := &Guard{ports: map[uint16]bool{}, listen: cfg.Listen.Unmap(), localAddrs: cfg.LocalAddrs, now: cfg.Now}
	for _, p := range cfg.Ports {
		g.ports[p] = true
	}
	if g.localAddrs == nil {
		g.localAddrs = interfacePrefixes
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.perSource = keyrate.New(keyrate.Config{Rate: l.PerSource, Burst: l.PerSourceBurst, Now: g.now})
	g.total = rate.NewLimiter(rate.Limit(l.Total), int(l.TotalBurst))
	return g, nil
}

// Check reports whether a datagram from src, sent to dst, may be
// answered: nil, or one of the Err values. dst is the address the
// datagram arrived on; the invalid Addr when unknown (a wildcard socket
// without control messages). An answer Check allows is counted against
// the rate limits.
func (g *Guard) Check(src netip.AddrPort, dst netip.Addr) error {
	if err := g.Refuse(src, dst); err != nil {
		return err
	}
	if !g.perSource.Allow(keyrate.Key(src.Addr(), 0, 0)) || !g.total.AllowN(g.now(), 1) {
		return ErrRateLimited
	}
	return nil
}

// Refuse applies the address and port rules only, spending no token: nil
// if src may be answered.
func (g *Guard) Refuse(src netip.AddrPort, dst netip.Addr) error {
	a, d := src.Addr().Unmap().WithZone(""), dst.Unmap().WithZone("")
	if err := unusable(a); err != nil {
		return err
	}
	if d.IsValid() {
		if err := unusable(d); err == ErrMulticast {
			return err // sent to a group: every responder on it would answer
		}
	}
	switch p := src.Port(); {
	case g.ports[p]:
		return ErrOwnPort
	case ServicePort(p):
		return ErrServicePort
	}
	if a.IsLoopback() {
		if g.onLoopback(d) {
			// A local client, told from the responder by its port
			// (checked above).
			return nil
		}
		return ErrOwnAddress
	}
	if a == d {
		return ErrOwnAddress
	}
	own, bcast := g.locals()
	switch {
	case own[a]:
		return ErrOwnAddress
	case bcast[a], d.IsValid() && bcast[d]:
		return ErrMulticast
	}
	return nil
}

// onLoopback reports whether a datagram sent to d arrived on loopback.
// With d unknown it may have if the socket listens there, and a loopback
// source can only have come from this host: other interfaces drop it as
// a martian.
func (g *Guard) onLoopback(d netip.Addr) bool {
	if d.IsValid() {
		return d.IsLoopback()
	}
	return g.listen.IsLoopback() || g.listen.IsUnspecified()
}

// unusable refuses the addresses no client can send from.
func unusable(a netip.Addr) error {
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return ErrUnspecified
	case a.IsMulticast():
		return ErrMulticast
	case a.Is4():
		b := a.As4()
		switch {
		case b[0] == 0: // 0.0.0.0/8, "this network" (RFC 1122)
			return ErrUnspecified
		case b[0] >= 240: // 240.0.0.0/4, reserved, and the limited broadcast
			return ErrMulticast
		}
	}
	return nil
}

// locals returns the host's addresses and its IPv4 subnets' broadcast
// addresses, re-reading them every LocalRefresh. A failed read keeps the
// last good set.
func (g *Guard) locals() (own, bcast map[netip.Addr]bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); g.local == nil || now.Sub(g.readAt) >= LocalRefresh || now.Before(g.readAt) {
		g.readAt = now
		prefixes, err := g.localAddrs()
		g.readErr = err
		if err == nil || g.local == nil {
			g.local, g.bcast = map[netip.Addr]bool{}, map[netip.Addr]bool{}
			for _, p := range prefixes {
				a := p.Addr().Unmap().WithZone("")
				g.local[a] = true
				if a.Is4() && p.Bits() < 31 {
					g.bcast[netipx.PrefixLastIP(netip.PrefixFrom(a, p.Bits()).Masked())] = true
				}
			}
		}
	}
	return g.local, g.bcast
}

// LocalErr is the error of the last read of the host's addresses, for
// logs: while it is set, the guard uses the last good set (or none).
func (g *Guard) LocalErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readErr
}

// interfacePrefixes lists the host's interface addresses with their
// prefix lengths.
func interfacePrefixes() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("udpguard: reading the interface addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, _ := ipn.Mask.Size()
		if ip.Is4() && ones > 32 {
			ones -= 96
		}
		out = append(out, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}

// AddrPort converts a net.Addr a PacketConn returned to a netip.AddrPort,
// the invalid one when it is not a UDP address.
func AddrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

package gateway

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tetherwfh/tether/internal/keyrate"
)

// Connection limits. Each listener the gateway serves on (the API, the
// in-tunnel web server, DNS over TCP on the host and in the tunnel) has a
// guard of its own, so a flood on one never takes another's share, and
// within a listener one client network (an IPv4 address, an IPv6 /64)
// holds at most its share.
const (
	// apiConnsPerClient: a full tether diag opens up to 16 loaded
	// connections a direction plus a new connection per latency probe;
	// 64 leaves room for that and for an admin's CLI behind the same
	// address, and stops one host from holding thousands idle.
	apiConnsPerClient = 64
	// dnsConnsPerClient: a stub resolver keeps one or two TCP
	// connections; 16 covers a NAT of a few hosts.
	dnsConnsPerClient = 16
	// minConnBudget and maxConnBudget bound a listener's total; within
	// them it is a quarter of the process's file descriptor limit, so
	// the listeners together never starve the upstream DNS sockets, the
	// peer store and the forwarded flows of descriptors.
	minConnBudget = 256
	maxConnBudget = 16384
)

// connGuard bounds and tracks one listener's connections. Connections
// beyond a cap are closed at accept, before any byte of TLS or HTTP is
// spent on them. It also closes a client's connections on demand: a
// revocation ends the revoked peer's sessions with the gateway's own
// services.
type connGuard struct {
	perClient, total int

	refused atomic.Uint64

	mu    sync.Mutex
	open  int
	byKey map[netip.Prefix]int
	conns map[*guardedConn]struct{}
}

func newConnGuard(perClient, total int) *connGuard {
	if total <= 0 {
		total = connBudget()
	}
	return &connGuard{perClient: perClient, total: total, byKey: map[netip.Prefix]int{}, conns: map[*guardedConn]struct{}{}}
}

// wrap returns ln with the guard applied at Accept.
func (g *connGuard) wrap(ln net.Listener) net.Listener { return &guardedListener{Listener: ln, g: g} }

// Refused counts connections closed at accept for being over a cap.
func (g *connGuard) Refused() uint64 { return g.refused.Load() }

// Open is the number of connections open now.
func (g *connGuard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (g *connGuard) admit(c net.Conn) (*guardedConn, bool) {
	addr := remoteAddr(c)
	key := keyrate.Key(addr, 0, 0)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open >= g.total || g.byKey[key] >= g.perClient {
		g.refused.Add(1)
		return nil, false
	}
	gc := &guardedConn{Conn: c, g: g, addr: addr, key: key}
	g.open++
	g.byKey[key]++
	g.conns[gc] = struct{}{}
	return gc, true
}

func (g *connGuard) release(gc *guardedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.conns[gc]; !ok {
		return
	}
	delete(g.conns, gc)
	g.open--
	if g.byKey[gc.key]--; g.byKey[gc.key] <= 0 {
		delete(g.byKey, gc.key)
	}
}

// closeFrom closes every connection whose remote address is a, and
// returns how many.
func (g *connGuard) closeFrom(a netip.Addr) int {
	g.mu.Lock()
	var victims []*guardedConn
	for gc := range g.conns {
		if gc.addr == a {
			victims = append(victims, gc)
		}
	}
	g.mu.Unlock()
	for _, gc := range victims {
		_ = gc.Close()
	}
	return len(victims)
}

type guardedListener struct {
	net.Listener
	g *connGuard
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc, ok := l.g.admit(c); ok {
			return gc, nil
		}
		// A reset frees the refused connection's state at once, on both
		// ends, where a FIN would leave it in TIME_WAIT here.
		if tc, ok := c.(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// guardedConn is an admitted connection; closing it frees its place.
type guardedConn struct {
	net.Conn
	g    *connGuard
	addr netip.Addr
	key  netip.Prefix
	once sync.Once
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.g.release(c) })
	return err
}

// errNotTCP is what the socket options below return on a connection
// that is not a host TCP socket (the netstack's, say).
var errNotTCP = errors.New("gateway: not a host TCP connection")

// SetReadBuffer, SyscallConn and CloseWrite reach the socket underneath,
// for net/http's graceful close and the measurement service's socket
// tuning (see measureserver.NewHTTPServer).
func (c *guardedConn) SetReadBuffer(n int) error {
	if rb, ok := c.Conn.(interface{ SetReadBuffer(int) error }); ok {
		return rb.SetReadBuffer(n)
	}
	return errNotTCP
}

func (c *guardedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNotTCP
}

func (c *guardedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNotTCP
}

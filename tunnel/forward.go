package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Forwarding limits. A subnet router serves every peer at once, so each
// bound keeps one peer (or a scan) from taking the gateway's sockets.
const (
	// forwardDialTimeout bounds the host-side connect; the peer's SYN
	// waits on it, and its own retransmits start after 1 s.
	forwardDialTimeout = 5 * time.Second
	// forwardMaxInFlightSYN is gVisor's bound on half-open forwarded
	// connections; beyond it SYNs are dropped and the peer retries.
	forwardMaxInFlightSYN = 512
	// forwardMaxFlows bounds forwarded TCP connections plus UDP flows.
	forwardMaxFlows = 4096
	// forwardUDPIdle closes a UDP flow nobody used for this long: long
	// enough for a DNS retry or a QUIC keepalive, short enough to free a
	// scan's sockets (Linux conntrack uses 30 s for unreplied UDP).
	forwardUDPIdle = 60 * time.Second
	// forwardUDPMax is the largest UDP payload relayed.
	forwardUDPMax = 65535
)

// Forward makes the userspace engine a subnet router: TCP connections and
// UDP flows that peers send to addresses in Allow, and that no listener
// inside the netstack takes, are relayed through the host's sockets, the
// way Tailscale's userspace subnet router works. The host sees ordinary
// sockets from the gateway process, so no root, TUN or NAT rule is needed.
type Forward struct {
	// Allow lists the destinations peers may reach; empty forwards nothing.
	Allow []netip.Prefix
	// Deny wins over Allow, e.g. the tunnel's own pool, so peers cannot
	// reach each other, and the gateway's address, whose unused ports
	// must not leak to the host's loopback services.
	Deny []netip.Prefix
	// Dial connects on the host; nil means a net.Dialer. Tests and the
	// lab replace it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives one debug line per refused or failed flow.
	Logger *slog.Logger
}

// ForwardStats counts forwarded traffic since the engine came up.
type ForwardStats struct {
	TCPAccepted, TCPRefused, TCPFailed uint64
	UDPFlows, UDPRefused               uint64
	Active                             int64
}

// forwarder relays one netstack's traffic to the host.
type forwarder struct {
	cfg   Forward
	log   *slog.Logger
	flows chan struct{} // a token per open flow

	tcpAccepted, tcpRefused, tcpFailed atomic.Uint64
	udpFlows, udpRefused               atomic.Uint64
	active                             atomic.Int64

	// ctx ends when the forwarder closes, cutting host dials short.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{}
	wg     sync.WaitGroup
}

// stackOf returns tnet's gVisor stack, made ready for forwarding.
// wireguard-go offers no accessor for it, so this reads its unexported
// field by name (go.mod pins the version, and a rename fails here, with a
// clear error, not later). It also clears the stack's HandleLocal:
// wireguard-go sets it, and in promiscuous mode gVisor then takes every
// peer's source address for its own and drops the packet
// (ipv4.endpoint.HandlePacket). Only the gateway forwards, and nothing in
// its netstack dials its own addresses, which is all HandleLocal serves.
func stackOf(tnet *netstack.Net, local []netip.Addr) (*stack.Stack, error) {
	s, err := netstackField[*stack.Stack](tnet, "stack")
	if err != nil {
		return nil, fmt.Errorf("tunnel: forwarding: %w", err)
	}
	if s == nil || !s.CheckNIC(1) {
		return nil, fmt.Errorf("%s: no NIC 1", netstackChanged)
	}
	owned := map[netip.Addr]bool{}
	for _, pa := range s.AllAddresses()[1] {
		owned[addrOf(pa.AddressWithPrefix.Address)] = true
	}
	for _, a := range local {
		if !owned[a.Unmap()] {
			return nil, fmt.Errorf("%s: it does not own %s", netstackChanged, a)
		}
	}
	hl := reflect.ValueOf(s).Elem().FieldByName("handleLocal")
	if !hl.IsValid() || hl.Kind() != reflect.Bool {
		return nil, fmt.Errorf("%s: gVisor's stack has no handleLocal", netstackChanged)
	}
	*(*bool)(unsafe.Pointer(hl.UnsafeAddr())) = false
	if s.HandleLocal() {
		return nil, fmt.Errorf("%s: cannot clear HandleLocal", netstackChanged)
	}
	return s, nil
}

func startForwarder(tnet *netstack.Net, local []netip.Addr, cfg Forward, log *slog.Logger) (*forwarder, error) {
	s, err := stackOf(tnet, local)
	if err != nil {
		return nil, err
	}
	if cfg.Dial == nil {
		d := &net.Dialer{}
		cfg.Dial = d.DialContext
	}
	if cfg.Logger != nil {
		log = cfg.Logger
	}
	f := &forwarder{cfg: cfg, log: log, flows: make(chan struct{}, forwardMaxFlows), conns: map[io.Closer]struct{}{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	// Promiscuous: accept packets for addresses that are not the stack's
	// own. Spoofing: answer from those addresses.
	if e := s.SetPromiscuousMode(1, true); e != nil {
		return nil, fmt.Errorf("tunnel: forwarding: promiscuous mode: %s", e)
	}
	if e := s.SetSpoofing(1, true); e != nil {
		return nil, fmt.Errorf("tunnel: forwarding: spoofing: %s", e)
	}
	tf := tcp.NewForwarder(s, 0, forwardMaxInFlightSYN, f.handleTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tf.HandlePacket)
	uf := udp.NewForwarder(s, f.handleUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, uf.HandlePacket)
	return f, nil
}

func (f *forwarder) allowed(a netip.Addr) bool { return f.cfg.Allowed(a) }

// Allowed reports whether peers may reach a: in Allow and not in Deny.
func (f *Forward) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.Deny {
		if p.Contains(a) {
			return false
		}
	}
	for _, p := range f.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// acquire takes a flow token and registers c for close; false when the
// forwarder is full or closed.
func (f *forwarder) acquire() bool {
	select {
	case f.flows <- struct{}{}:
	default:
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		<-f.flows
		return false
	}
	f.wg.Add(1)
	f.active.Add(1)
	return true
}

func (f *forwarder) release() {
	f.active.Add(-1)
	<-f.flows
	f.wg.Done()
}

// track registers a flow's two ends for close; when the forwarder is
// already closed it closes them and reports false.
func (f *forwarder) track(a, b io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		a.Close()
		b.Close()
		return false
	}
	f.conns[a], f.conns[b] = struct{}{}, struct{}{}
	return true
}

// untrack forgets a flow's ends and closes them.
func (f *forwarder) untrack(a, b io.Closer) {
	f.mu.Lock()
	delete(f.conns, a)
	delete(f.conns, b)
	f.mu.Unlock()
	a.Close()
	b.Close()
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

// handleTCP runs for each SYN no listener took. It connects on the host
// first and completes the peer's handshake only if that worked, so the
// peer sees the real outcome: a connection, or a reset.
func (f *forwarder) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	src := netip.AddrPortFrom(addrOf(id.RemoteAddress), id.RemotePort)
	if !f.allowed(dst.Addr()) || !f.acquire() {
		f.tcpRefused.Add(1)
		f.log.Debug("forward: TCP refused", "src", src, "dst", dst)
		r.Complete(true)
		return
	}
	// The handler runs on gVisor's dispatch goroutine; dial elsewhere.
	go func() {
		defer f.release()
		ctx, cancel := context.WithTimeout(f.ctx, forwardDialTimeout)
		host, err := f.cfg.Dial(ctx, "tcp", dst.String())
		cancel()
		if err != nil {
			f.tcpFailed.Add(1)
			f.log.Debug("forward: TCP connect failed", "src", src, "dst", dst, "err", err)
			r.Complete(true)
			return
		}
		var wq waiter.Queue
		ep, terr := r.CreateEndpoint(&wq)
		if terr != nil {
			f.tcpFailed.Add(1)
			host.Close()
			r.Complete(true)
			return
		}
		r.Complete(false)
		ep.SocketOptions().SetKeepAlive(true)
		peer := gonet.NewTCPConn(&wq, ep)
		f.tcpAccepted.Add(1)
		f.splice(peer, host)
	}()
}

// splice copies both ways until both directions end, passing half-closes
// on, then closes both.
func (f *forwarder) splice(a, b net.Conn) {
	if !f.track(a, b) {
		return
	}
	defer f.untrack(a, b)
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// handleUDP runs for each datagram no endpoint took: the first of a new
// flow. It opens a host socket to the destination and relays both ways
// until the flow is idle.
func (f *forwarder) handleUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	src := netip.AddrPortFrom(addrOf(id.RemoteAddress), id.RemotePort)
	if !f.allowed(dst.Addr()) || !f.acquire() {
		f.udpRefused.Add(1)
		f.log.Debug("forward: UDP refused", "src", src, "dst", dst)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		f.release()
		f.log.Debug("forward: UDP endpoint", "src", src, "dst", dst, "err", terr.String())
		return
	}
	peer := gonet.NewUDPConn(&wq, ep)
	f.udpFlows.Add(1)
	go func() {
		defer f.release()
		ctx, cancel := context.WithTimeout(f.ctx, forwardDialTimeout)
		host, err := f.cfg.Dial(ctx, "udp", dst.String())
		cancel()
		if err != nil {
			peer.Close()
			f.log.Debug("forward: UDP socket failed", "src", src, "dst", dst, "err", err)
			return
		}
		f.relayUDP(peer, host)
	}()
}

// relayUDP copies datagrams both ways; a direction idle for
// forwardUDPIdle ends the flow.
func (f *forwarder) relayUDP(peer, host net.Conn) {
	if !f.track(peer, host) {
		return
	}
	defer f.untrack(peer, host)
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(done)
			peer.Close()
			host.Close()
		})
	}
	cp := func(dst, src net.Conn) {
		defer stop()
		buf := make([]byte, forwardUDPMax)
		for {
			_ = src.SetReadDeadline(time.Now().Add(forwardUDPIdle))
			n, err := src.Read(buf)
			if err != nil {
				var ne net.Error
				// A quiet direction is fine while the other is busy.
				if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < forwardUDPIdle {
					continue
				}
				return
			}
			last.Store(time.Now().UnixNano())
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go cp(host, peer)
	cp(peer, host)
	<-done
}

func (f *forwarder) stats() ForwardStats {
	return ForwardStats{TCPAccepted: f.tcpAccepted.Load(), TCPRefused: f.tcpRefused.Load(), TCPFailed: f.tcpFailed.Load(),
		UDPFlows: f.udpFlows.Load(), UDPRefused: f.udpRefused.Load(), Active: f.active.Load()}
}

// close ends every forwarded flow and waits for their goroutines.
func (f *forwarder) close() {
	f.cancel()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

package stamp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/time/rate"

	"github.com/tetherwfh/tether/internal/udpguard"
)

// unknownTTL is reported when the received TTL cannot be read. RFC 8762
// section 4.3.1 asks for the received TTL; 255 is the value a reflector on
// the same link would see, chosen so that "TTL unknown" never looks like
// a long path.
const unknownTTL = 255

// DefaultLimits bound a Reflector's answers. One full `tether diag` sends
// a source about 600 packets within 3 s (the loss series' 100, the path
// MTU search's at most 16 rounds of 24, and ten a second while each
// direction is loaded), so the burst holds one run with room for a
// second; the rate refills it in 10 s. At these rates a forged source
// can make the reflector send a victim at most 100 packets a second, and
// all victims together 2,000, each no larger than its request.
var DefaultLimits = udpguard.Limits{PerSource: 100, PerSourceBurst: 1000, Total: 2000, TotalBurst: 4000}

// dropLogEvery paces the debug log of dropped packets: a flood would
// otherwise write a line per packet.
const dropLogEvery = time.Second

// Reflector answers STAMP test packets statelessly (RFC 8762, section
// 4.3): each reply copies the sender's sequence number. Its zero value is
// ready to use.
//
// It answers nothing that could make it loop or be aimed at a victim
// (see internal/udpguard): a source that is this host (the packet's
// destination, read from the socket's control messages, or an interface
// address), a source on a server port (its own, STAMP's 862, any below
// 1024, the reflecting services above), an unspecified, multicast or
// broadcast address, and a packet that is itself a reflector's answer.
// It answers each source network within Limits.
type Reflector struct {
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Limits bound the answers; the zero value means DefaultLimits.
	Limits udpguard.Limits
	// LocalAddrs lists the host's addresses for the guard; nil means
	// the interfaces' (see udpguard.Config).
	LocalAddrs func() ([]netip.Prefix, error)

	reflected, malformed, replies, refused, limited atomic.Uint64
}

// ReflectorStats are a Reflector's counters.
type ReflectorStats struct {
	// Reflected counts answers sent.
	Reflected uint64
	// Malformed counts packets shorter than a test packet.
	Malformed uint64
	// Replies counts packets that were a reflector's answer, not a
	// sender's request: another reflector's, or ours sent back.
	Replies uint64
	// Refused counts packets from a source never answered.
	Refused uint64
	// RateLimited counts packets over Limits.
	RateLimited uint64
}

// Stats returns the counters. Safe for concurrent use.
func (r *Reflector) Stats() ReflectorStats {
	return ReflectorStats{Reflected: r.reflected.Load(), Malformed: r.malformed.Load(), Replies: r.replies.Load(),
		Refused: r.refused.Load(), RateLimited: r.limited.Load()}
}

// Serve reflects packets arriving on conn until conn is closed, then
// returns nil. It returns an error if reading fails otherwise (a read
// deadline included), except for the ICMP errors a datagram socket may
// surface for an earlier reply, which it skips. It returns an error at
// once if Limits are invalid.
func (r *Reflector) Serve(conn net.PacketConn) error {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	logger := r.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	limits := r.Limits
	if limits == (udpguard.Limits{}) {
		limits = DefaultLimits
	}
	pc := newPacketConn(conn)
	ports := []uint16{DefaultPort}
	if p := pc.local.Port(); p != 0 {
		ports = append(ports, p)
	}
	guard, err := udpguard.New(udpguard.Config{Limits: limits, Ports: ports, Listen: pc.local.Addr(), LocalAddrs: r.LocalAddrs, Now: now})
	if err != nil {
		return fmt.Errorf("stamp: reflector: %w", err)
	}
	logDrops := rate.NewLimiter(rate.Every(dropLogEvery), 1)
	drop := func(counter *atomic.Uint64, p packet, n int, why error) {
		counter.Add(1)
		if logDrops.Allow() {
			logger.Debug("stamp: dropped a packet", "from", p.src, "to", p.dst, "len", n, "why", why)
		}
	}
	buf := make([]byte, 9000)
	out := make([]byte, 0, 9000)
	for {
		n, p, err := pc.read(buf)
		recv := now()
		if err != nil {
			// Looping on a closed netstack socket spun a core for ever
			// after a gateway closed its tunnel.
			if Closed(err) {
				return nil
			}
			if transientReadError(err) {
				continue
			}
			return fmt.Errorf("stamp: reflector reading: %w", err)
		}
		sp, err := ParseSender(buf[:n])
		if err != nil {
			drop(&r.malformed, p, n, err)
			continue
		}
		if IsReflected(buf[:n]) {
			drop(&r.replies, p, n, errReflected)
			continue
		}
		if err := guard.Check(p.src, p.dst); err != nil {
			if errors.Is(err, udpguard.ErrRateLimited) {
				drop(&r.limited, p, n, err)
			} else {
				drop(&r.refused, p, n, err)
			}
			continue
		}
		rp := ReflectorPacket{
			Seq: sp.Seq, ErrorEstimate: DefaultErrorEstimate, ReceiveTimestamp: recv,
			SenderSeq: sp.Seq, SenderTimestamp: sp.Timestamp, SenderErrorEstimate: sp.ErrorEstimate,
			SenderTTL: uint8(p.ttl),
		}
		rp.Timestamp = now()
		out, _ = rp.AppendBinary(out[:0])
		// Symmetric size (RFC 8762 section 4.3): pad to the sender's length.
		for len(out) < n {
			out = append(out, 0)
		}
		if err := pc.write(out, p); err != nil {
			logger.Debug("stamp: reply failed", "to", p.src, "err", err)
			continue
		}
		r.reflected.Add(1)
	}
}

var errReflected = errors.New("a reflector's answer, not a sender's request")

// IsReflected reports whether b, a test packet, is a Session-Reflector's
// answer rather than a Session-Sender's request: a sender zeroes octets
// 16 to 43 (MBZ in RFC 8762 section 4.2.1, and still after RFC 8972's
// SSID), where a reflector writes its receive timestamp and the sender's
// fields. A reflector that answered answers would loop with any other
// reflector, or with an echo service, that a forged source points it at.
func IsReflected(b []byte) bool {
	if len(b) < PacketLen {
		return false
	}
	for _, c := range b[offRecvTimestamp:PacketLen] {
		if c != 0 {
			return true
		}
	}
	return false
}

// packet is what the reflector knows of a datagram it read.
type packet struct {
	src     netip.AddrPort // the sender, as the datagram says
	peer    net.Addr       // the same, for conns that are not UDP sockets
	dst     netip.Addr     // where it arrived; invalid when unknown
	ifIndex int
	ttl     int
}

// packetConn reads datagrams with their destination address and TTL
// where the socket can say them (IP_PKTINFO, IPV6_RECVPKTINFO, IP_RECVTTL,
// IPV6_RECVHOPLIMIT), and answers from the address the datagram was sent
// to, so a reflector on a wildcard address of a multihomed host answers
// from the address the client asked.
type packetConn struct {
	conn   net.PacketConn
	uc     *net.UDPConn // nil: no control messages
	local  netip.AddrPort
	oob    []byte
	sockV6 bool
}

func newPacketConn(conn net.PacketConn) *packetConn {
	pc := &packetConn{conn: conn}
	if la := conn.LocalAddr(); la != nil {
		pc.local = udpguard.AddrPort(la)
	}
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return pc
	}
	// A socket on 0.0.0.0 with network "udp" is a dual-stack IPv6 one:
	// its IPv4 datagrams carry IPv4 control messages, its IPv6 ones IPv6.
	if pc.local.Addr().Is4() {
		if ipv4.NewPacketConn(uc).SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true) != nil {
			return pc
		}
	} else {
		if ipv6.NewPacketConn(uc).SetControlMessage(ipv6.FlagDst|ipv6.FlagHopLimit|ipv6.FlagInterface, true) != nil {
			return pc
		}
		_ = ipv4.NewPacketConn(uc).SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true)
		pc.sockV6 = true
	}
	pc.uc = uc
	pc.oob = make([]byte, oobSize)
	return pc
}

// oobSize holds the control messages asked for, with room to spare.
const oobSize = 512

func (pc *packetConn) read(b []byte) (int, packet, error) {
	var p packet
	p.ttl = unknownTTL
	if pc.uc == nil {
		n, peer, err := pc.conn.ReadFrom(b)
		p.peer, p.src = peer, udpguard.AddrPort(peer)
		if !pc.local.Addr().IsUnspecified() {
			p.dst = pc.local.Addr()
		}
		return n, p, err
	}
	n, oobn, _, src, err := pc.uc.ReadMsgUDPAddrPort(b, pc.oob)
	if err != nil {
		return n, p, err
	}
	p.src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	var c4 ipv4.ControlMessage
	if c4.Parse(pc.oob[:oobn]) == nil {
		if a, ok := netip.AddrFromSlice(c4.Dst); ok {
			p.dst, p.ifIndex = a.Unmap(), c4.IfIndex
		}
		if c4.TTL > 0 {
			p.ttl = c4.TTL
		}
	}
	if pc.sockV6 {
		var c6 ipv6.ControlMessage
		if c6.Parse(pc.oob[:oobn]) == nil {
			if a, ok := netip.AddrFromSlice(c6.Dst); ok && !p.dst.IsValid() {
				p.dst, p.ifIndex = a.Unmap(), c6.IfIndex
			}
			if c6.HopLimit > 0 && p.src.Addr().Is6() {
				p.ttl = c6.HopLimit
			}
		}
	}
	if !p.dst.IsValid() && !pc.local.Addr().IsUnspecified() {
		p.dst = pc.local.Addr()
	}
	return n, p, nil
}

func (pc *packetConn) write(b []byte, p packet) error {
	if pc.uc == nil {
		_, err := pc.conn.WriteTo(b, p.peer)
		return err
	}
	var oob []byte
	if pc.local.Addr().IsUnspecified() && p.dst.IsValid() {
		if p.dst.Is4() {
			oob = (&ipv4.ControlMessage{Src: p.dst.AsSlice()}).Marshal()
		} else {
			cm := &ipv6.ControlMessage{Src: p.dst.AsSlice()}
			if p.dst.IsLinkLocalUnicast() {
				cm.IfIndex = p.ifIndex
			}
			oob = cm.Marshal()
		}
	}
	_, _, err := pc.uc.WriteMsgUDPAddrPort(b, oob, p.src)
	if err != nil && oob != nil {
		// The address may have gone since; let the kernel pick one.
		_, _, err = pc.uc.WriteMsgUDPAddrPort(b, nil, p.src)
	}
	return err
}

// Closed reports whether a read's error means the socket is closed: the
// OS's sockets say net.ErrClosed, a userspace netstack's (gVisor's gonet)
// io.EOF. Either way every later read fails at once, so a read loop must
// stop rather than retry.
func Closed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}

// transientReadError reports the errors a UDP read may return for an
// earlier datagram's ICMP error (a sender that went away), after which
// the socket still works.
func transientReadError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

package stamp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// unknownTTL is reported when the received TTL cannot be read. RFC 8762
// section 4.3.1 asks for the received TTL; 255 is the value a reflector on
// the same link would see, chosen so that "TTL unknown" never looks like
// a long path.
const unknownTTL = 255

// Reflector answers STAMP test packets statelessly (RFC 8762, section
// 4.3): each reply copies the sender's sequence number. Its zero value is
// ready to use.
type Reflector struct {
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	reflected, dropped atomic.Uint64
}

// Stats returns how many packets were reflected and how many were dropped
// as malformed. Safe for concurrent use.
func (r *Reflector) Stats() (reflected, dropped uint64) {
	return r.reflected.Load(), r.dropped.Load()
}

// Serve reflects packets arriving on conn until conn is closed, then
// returns nil. It returns an error if reading fails otherwise (a read
// deadline included), except for the ICMP errors a datagram socket may
// surface for an earlier reply, which it skips.
func (r *Reflector) Serve(conn net.PacketConn) error {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	logger := r.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var p4 *ipv4.PacketConn
	if uc, ok := conn.(*net.UDPConn); ok {
		if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
			p4 = ipv4.NewPacketConn(uc)
			if err := p4.SetControlMessage(ipv4.FlagTTL, true); err != nil {
				p4 = nil
			}
		}
	}
	buf := make([]byte, 9000)
	out := make([]byte, 0, 9000)
	for {
		var (
			n    int
			peer net.Addr
			ttl  = unknownTTL
			err  error
		)
		if p4 != nil {
			var cm *ipv4.ControlMessage
			n, cm, peer, err = p4.ReadFrom(buf)
			if cm != nil && cm.TTL > 0 {
				ttl = cm.TTL
			}
		} else {
			n, peer, err = conn.ReadFrom(buf)
		}
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
			r.dropped.Add(1)
			logger.Debug("stamp: dropped malformed packet", "from", peer, "len", n, "err", err)
			continue
		}
		rp := ReflectorPacket{
			Seq: sp.Seq, ErrorEstimate: DefaultErrorEstimate, ReceiveTimestamp: recv,
			SenderSeq: sp.Seq, SenderTimestamp: sp.Timestamp, SenderErrorEstimate: sp.ErrorEstimate,
			SenderTTL: uint8(ttl),
		}
		rp.Timestamp = now()
		out, _ = rp.AppendBinary(out[:0])
		// Symmetric size (RFC 8762 section 4.3): pad to the sender's length.
		for len(out) < n {
			out = append(out, 0)
		}
		if _, err := conn.WriteTo(out, peer); err != nil {
			logger.Debug("stamp: reply failed", "to", peer, "err", err)
			continue
		}
		r.reflected.Add(1)
	}
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

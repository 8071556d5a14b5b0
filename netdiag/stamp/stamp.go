// Package stamp implements the Simple Two-way Active Measurement Protocol
// (STAMP, RFC 8762) in its unauthenticated mode: a stateless reflector for
// the gateway and a prober for the client, so latency, jitter and loss can
// be measured over UDP where ICMP is filtered.
package stamp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// DefaultPort is STAMP's well-known UDP port (RFC 8762, section 4.1).
const DefaultPort = 862

// PacketLen is the length of an unauthenticated test packet, sender's and
// reflector's alike (RFC 8762, sections 4.2.1 and 4.3.1).
const PacketLen = 44

// ErrShort reports a packet shorter than PacketLen.
var ErrShort = errors.New("stamp: packet shorter than 44 octets")

// Byte offsets of the unauthenticated formats.
const (
	offSeq       = 0  // both: Sequence Number, 4 octets
	offTimestamp = 4  // both: Timestamp, 8 octets
	offErrEst    = 12 // both: Error Estimate, 2 octets
	// Reflector only (after 2 MBZ octets at 14):
	offRecvTimestamp = 16 // Receive Timestamp, 8
	offSenderSeq     = 24 // Session-Sender Sequence Number, 4
	offSenderTime    = 28 // Session-Sender Timestamp, 8
	offSenderErrEst  = 36 // Session-Sender Error Estimate, 2
	offSenderTTL     = 40 // Session-Sender TTL, 1 (after 2 MBZ octets at 38)
)

// DefaultErrorEstimate is the Error Estimate we send (RFC 4656, section
// 4.1.2: S, Z, 6-bit Scale, 8-bit Multiplier; error = Multiplier × 2^(Scale-32)
// seconds). S=0: the clock is not synchronized to UTC; Z=0: NTP format;
// Scale 22, Multiplier 1: about 1 ms, honest for an unsynchronized host.
const DefaultErrorEstimate uint16 = 22<<8 | 1

// SenderPacket is a Session-Sender test packet.
type SenderPacket struct {
	Seq           uint32
	Timestamp     time.Time
	ErrorEstimate uint16
}

// AppendBinary appends the packet's 44 octets to b.
func (p SenderPacket) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, PacketLen)...)
	w := b[start:]
	binary.BigEndian.PutUint32(w[offSeq:], p.Seq)
	binary.BigEndian.PutUint64(w[offTimestamp:], toNTP(p.Timestamp))
	binary.BigEndian.PutUint16(w[offErrEst:], p.ErrorEstimate)
	return b, nil
}

// MarshalBinary returns the packet's 44 octets.
func (p SenderPacket) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// ParseSender parses a Session-Sender packet; octets past 44 are padding.
func ParseSender(b []byte) (SenderPacket, error) {
	if len(b) < PacketLen {
		return SenderPacket{}, fmt.Errorf("%w (got %d)", ErrShort, len(b))
	}
	return SenderPacket{
		Seq:           binary.BigEndian.Uint32(b[offSeq:]),
		Timestamp:     fromNTP(binary.BigEndian.Uint64(b[offTimestamp:])),
		ErrorEstimate: binary.BigEndian.Uint16(b[offErrEst:]),
	}, nil
}

// ReflectorPacket is a Session-Reflector test packet.
type ReflectorPacket struct {
	Seq                 uint32
	Timestamp           time.Time // when the reflector sent it
	ErrorEstimate       uint16
	ReceiveTimestamp    time.Time // when the reflector received the sender's packet
	SenderSeq           uint32
	SenderTimestamp     time.Time
	SenderErrorEstimate uint16
	SenderTTL           uint8
}

// AppendBinary appends the packet's 44 octets to b.
func (p ReflectorPacket) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, PacketLen)...)
	w := b[start:]
	binary.BigEndian.PutUint32(w[offSeq:], p.Seq)
	binary.BigEndian.PutUint64(w[offTimestamp:], toNTP(p.Timestamp))
	binary.BigEndian.PutUint16(w[offErrEst:], p.ErrorEstimate)
	binary.BigEndian.PutUint64(w[offRecvTimestamp:], toNTP(p.ReceiveTimestamp))
	binary.BigEndian.PutUint32(w[offSenderSeq:], p.SenderSeq)
	binary.BigEndian.PutUint64(w[offSenderTime:], toNTP(p.SenderTimestamp))
	binary.BigEndian.PutUint16(w[offSenderErrEst:], p.SenderErrorEstimate)
	w[offSenderTTL] = p.SenderTTL
	return b, nil
}

// MarshalBinary returns the packet's 44 octets.
func (p ReflectorPacket) MarshalBinary() ([]byte, error) { return p.AppendBinary(nil) }

// ParseReflector parses a Session-Reflector packet; octets past 44 are
// padding.
func ParseReflector(b []byte) (ReflectorPacket, error) {
	if len(b) < PacketLen {
		return ReflectorPacket{}, fmt.Errorf("%w (got %d)", ErrShort, len(b))
	}
	return ReflectorPacket{
		Seq:                 binary.BigEndian.Uint32(b[offSeq:]),
		Timestamp:           fromNTP(binary.BigEndian.Uint64(b[offTimestamp:])),
		ErrorEstimate:       binary.BigEndian.Uint16(b[offErrEst:]),
		ReceiveTimestamp:    fromNTP(binary.BigEndian.Uint64(b[offRecvTimestamp:])),
		SenderSeq:           binary.BigEndian.Uint32(b[offSenderSeq:]),
		SenderTimestamp:     fromNTP(binary.BigEndian.Uint64(b[offSenderTime:])),
		SenderErrorEstimate: binary.BigEndian.Uint16(b[offSenderErrEst:]),
		SenderTTL:           b[offSenderTTL],
	}, nil
}

// ntpEpochOffset is the seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const ntpEpochOffset = 2208988800

// toNTP converts t to the 64-bit NTP format: 32 bits of seconds since 1900
// and 32 bits of fraction. Era 0 ends in 2036; the seconds wrap then, which
// is harmless here because only differences of nearby times are used.
func toNTP(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	if v := secs<<32 | frac; v != 0 {
		return v
	}
	return 1 // the epoch itself; 0 means "no timestamp"
}

// fromNTP converts the 64-bit NTP format to a time, assuming era 0.
func fromNTP(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	secs := int64(v>>32) - ntpEpochOffset
	nanos := int64(((v & 0xffffffff) * 1e9) >> 32)
	return time.Unix(secs, nanos)
}

package stamp

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSenderLayout(t *testing.T) {
	ts := time.Date(2026, 11, 22, 12, 0, 0, 500_000_000, time.UTC)
	b, err := SenderPacket{Seq: 0x01020304, Timestamp: ts, ErrorEstimate: 0x1601}.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, 44)
	assert.Equal(t, []byte{1, 2, 3, 4}, b[0:4])
	assert.Equal(t, uint32(ts.Unix()+2208988800), binary.BigEndian.Uint32(b[4:8]), "NTP seconds since 1900")
	assert.Equal(t, uint32(1<<31), binary.BigEndian.Uint32(b[8:12]), "half a second of fraction")
	assert.Equal(t, []byte{0x16, 0x01}, b[12:14])
	assert.Equal(t, make([]byte, 30), b[14:], "MBZ")
	p, err := ParseSender(append(b, 9, 9, 9)) // padding is allowed
	require.NoError(t, err)
	assert.Equal(t, uint32(0x01020304), p.Seq)
	assert.WithinDuration(t, ts, p.Timestamp, time.Nanosecond)
}

func TestReflectorLayout(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 123_456_789)
	in := ReflectorPacket{Seq: 7, Timestamp: t0.Add(time.Millisecond), ErrorEstimate: 1, ReceiveTimestamp: t0,
		SenderSeq: 9, SenderTimestamp: t0.Add(-time.Second), SenderErrorEstimate: 2, SenderTTL: 61}
	b, err := in.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, 44)
	assert.Equal(t, uint32(7), binary.BigEndian.Uint32(b[0:]))
	assert.Equal(t, []byte{0, 0}, b[14:16], "MBZ")
	assert.Equal(t, uint32(9), binary.BigEndian.Uint32(b[24:]))
	assert.Equal(t, uint16(2), binary.BigEndian.Uint16(b[36:]))
	assert.Equal(t, []byte{0, 0}, b[38:40], "MBZ")
	assert.Equal(t, byte(61), b[40])
	assert.Equal(t, []byte{0, 0, 0}, b[41:44], "MBZ")
	out, err := ParseReflector(b)
	require.NoError(t, err)
	assert.Equal(t, in.SenderSeq, out.SenderSeq)
	assert.Equal(t, in.SenderTTL, out.SenderTTL)
	assert.WithinDuration(t, in.ReceiveTimestamp, out.ReceiveTimestamp, time.Nanosecond)
	assert.WithinDuration(t, in.SenderTimestamp, out.SenderTimestamp, time.Nanosecond)
}

func TestShortPacketsAreRejected(t *testing.T) {
	_, err := ParseSender(make([]byte, 43))
	assert.ErrorIs(t, err, ErrShort)
	_, err = ParseReflector(nil)
	assert.ErrorIs(t, err, ErrShort)
}

func startReflector(t testing.TB) (*Reflector, net.Addr) {
	t.Helper()
	r, pc := serveOn(t, &Reflector{}, "udp4", "127.0.0.1:0")
	return r, pc.LocalAddr()
}

// serveOn runs r on a new socket and returns the socket, so a test can
// send from the reflector's own address.
func serveOn(t testing.TB, r *Reflector, network, addr string) (*Reflector, net.PacketConn) {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Serve(pc) }()
	t.Cleanup(func() { pc.Close(); assert.NoError(t, <-done) })
	return r, pc
}

func TestReflectorAnswersSymmetricallyAndDropsJunk(t *testing.T) {
	r, addr := startReflector(t)
	c, err := net.Dial("udp4", addr.String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("short"))
	require.NoError(t, err)
	for _, size := range []int{44, 100} {
		pkt, _ := SenderPacket{Seq: uint32(size), Timestamp: time.Now()}.MarshalBinary()
		pkt = append(pkt, make([]byte, size-44)...)
		_, err := c.Write(pkt)
		require.NoError(t, err)
		buf := make([]byte, 2000)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
		n, err := c.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, size, n, "the reply is as long as the request")
		rp, err := ParseReflector(buf[:n])
		require.NoError(t, err)
		assert.Equal(t, uint32(size), rp.Seq, "stateless: the sender's sequence number")
		assert.Equal(t, uint32(size), rp.SenderSeq)
		assert.Equal(t, uint8(64), rp.SenderTTL, "the received TTL (Linux default 64)")
		assert.False(t, rp.Timestamp.Before(rp.ReceiveTimestamp))
	}
	st := r.Stats()
	assert.EqualValues(t, 2, st.Reflected)
	assert.EqualValues(t, 1, st.Malformed)
}

func TestProbeMeasuresRoundTrips(t *testing.T) {
	_, addr := startReflector(t)
	c, err := net.Dial("udp4", addr.String())
	require.NoError(t, err)
	defer c.Close()
	res, err := Probe(context.Background(), c, ProbeConfig{Count: 20, Interval: time.Millisecond, Wait: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 20, res.Sent)
	assert.Len(t, res.RTTs, 20)
	assert.Zero(t, res.Lost)
	for _, d := range res.RTTs {
		assert.Positive(t, d)
		assert.Less(t, d, 100*time.Millisecond)
	}
}

// fakeReflector answers through fn, which may drop, delay or duplicate.
func fakeReflector(t *testing.T, fn func(pc net.PacketConn, from net.Addr, sp SenderPacket, recv time.Time)) net.Addr {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			recv := time.Now()
			if sp, err := ParseSender(buf[:n]); err == nil {
				fn(pc, from, sp, recv)
			}
		}
	}()
	return pc.LocalAddr()
}

func reply(pc net.PacketConn, to net.Addr, sp SenderPacket, recv, sent time.Time) {
	b, _ := ReflectorPacket{Seq: sp.Seq, Timestamp: sent, ReceiveTimestamp: recv, SenderSeq: sp.Seq, SenderTimestamp: sp.Timestamp}.MarshalBinary()
	_, _ = pc.WriteTo(b, to)
}

func TestProbeCountsLossAndDuplicatesAndSubtractsDwell(t *testing.T) {
	addr := fakeReflector(t, func(pc net.PacketConn, from net.Addr, sp SenderPacket, recv time.Time) {
		switch {
		case sp.Seq%2 == 1: // drop odd packets
		case sp.Seq == 0: // answer twice
			reply(pc, from, sp, recv, time.Now())
			reply(pc, from, sp, recv, time.Now())
		default: // dwell 30 ms, and say so honestly
			go func() {
				time.Sleep(30 * time.Millisecond)
				reply(pc, from, sp, recv, time.Now())
			}()
		}
	})
	c, err := net.Dial("udp4", addr.String())
	require.NoError(t, err)
	defer c.Close()
	res, err := Probe(context.Background(), c, ProbeConfig{Count: 10, Interval: 5 * time.Millisecond, Wait: 300 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 10, res.Sent)
	assert.Equal(t, 5, res.Lost)
	assert.Equal(t, 1, res.Duplicates)
	require.Len(t, res.RTTs, 5)
	for _, d := range res.RTTs {
		assert.Less(t, d, 20*time.Millisecond, "the reflector's reported dwell time is not path delay")
	}
}

func TestProbeSaysWhenNothingAnswers(t *testing.T) {
	addr := fakeReflector(t, func(net.PacketConn, net.Addr, SenderPacket, time.Time) {})
	c, err := net.Dial("udp4", addr.String())
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	res, err := Probe(context.Background(), c, ProbeConfig{Count: 3, Interval: time.Millisecond, Wait: 100 * time.Millisecond})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no reply from "+addr.String())
	assert.Equal(t, 3, res.Lost)
	assert.Less(t, time.Since(start), time.Second)
}

func TestProbeStopsWithTheContext(t *testing.T) {
	addr := fakeReflector(t, func(net.PacketConn, net.Addr, SenderPacket, time.Time) {})
	c, err := net.Dial("udp4", addr.String())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = Probe(ctx, c, ProbeConfig{Count: 1000, Interval: 10 * time.Millisecond})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func FuzzParse(f *testing.F) {
	s, _ := SenderPacket{Seq: 1, Timestamp: time.Unix(1_800_000_000, 5)}.MarshalBinary()
	r, _ := ReflectorPacket{Seq: 2, SenderTTL: 64, ReceiveTimestamp: time.Unix(1_800_000_000, 0)}.MarshalBinary()
	f.Add(s)
	f.Add(r)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseSender(b); err == nil {
			again, _ := p.MarshalBinary()
			assert.False(t, IsReflected(again), "a sender's packet is never taken for an answer")
			p2, err := ParseSender(again)
			require.NoError(t, err)
			assert.Equal(t, p.Seq, p2.Seq)
			assert.True(t, p.Timestamp.Equal(p2.Timestamp) || p.Timestamp.Sub(p2.Timestamp).Abs() <= time.Nanosecond)
		}
		if p, err := ParseReflector(b); err == nil {
			again, _ := p.MarshalBinary()
			p2, err := ParseReflector(again)
			require.NoError(t, err)
			assert.Equal(t, p.SenderSeq, p2.SenderSeq)
			if !p.ReceiveTimestamp.IsZero() {
				assert.True(t, IsReflected(again), "an answer with a receive timestamp is never taken for a request")
			}
			assert.Equal(t, p.SenderTTL, p2.SenderTTL)
		}
	})
}

func BenchmarkReflectorRoundTrip(b *testing.B) {
	_, addr := startReflector(b)
	c, err := net.Dial("udp4", addr.String())
	require.NoError(b, err)
	defer c.Close()
	pkt, _ := SenderPacket{Seq: 1, Timestamp: time.Now()}.MarshalBinary()
	buf := make([]byte, 100)
	b.ResetTimer()
	for range b.N {
		_, _ = c.Write(pkt)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// scriptedConn returns its reads in order, then blocks until closed.
type scriptedConn struct {
	net.PacketConn // nil: only the methods below are called
	reads          []func(b []byte) (int, net.Addr, error)
	wrote          int
}

func (c *scriptedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if len(c.reads) == 0 {
		return 0, nil, errors.New("scriptedConn: read past the script")
	}
	r := c.reads[0]
	c.reads = c.reads[1:]
	return r(b)
}

func (c *scriptedConn) WriteTo(b []byte, _ net.Addr) (int, error) { c.wrote++; return len(b), nil }

func (c *scriptedConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: DefaultPort}
}

// TestReflectorStopsOnEveryKindOfClose: a closed OS socket says
// net.ErrClosed, a closed netstack (gonet) socket io.EOF; a reflector
// that looped on the latter spun a core for ever after a gateway closed
// its tunnel. ICMP errors for earlier replies are skipped; any other
// error ends Serve with it.
func TestReflectorStopsOnEveryKindOfClose(t *testing.T) {
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	pkt, _ := SenderPacket{Seq: 1, Timestamp: time.Now()}.MarshalBinary()
	packet := func(b []byte) (int, net.Addr, error) { return copy(b, pkt), peer, nil }
	fails := func(err error) func([]byte) (int, net.Addr, error) {
		return func([]byte) (int, net.Addr, error) {
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: err}
		}
	}
	other := errors.New("endpoint is in invalid state")
	for _, tc := range []struct {
		name  string
		last  error
		wants error // nil: Serve returns nil
	}{
		{"OS socket closed", net.ErrClosed, nil},
		{"netstack socket closed", io.EOF, nil},
		{"another error", other, other},
		{"a read deadline", os.ErrDeadlineExceeded, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &scriptedConn{reads: []func([]byte) (int, net.Addr, error){
				fails(syscall.ECONNREFUSED), packet, fails(syscall.EHOSTUNREACH), packet, fails(tc.last),
			}}
			done := make(chan error, 1)
			go func() { done <- (&Reflector{}).Serve(c) }()
			select {
			case err := <-done:
				if tc.wants == nil {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, tc.wants)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not return")
			}
			assert.Equal(t, 2, c.wrote, "both packets answered across the ICMP errors")
		})
	}
}

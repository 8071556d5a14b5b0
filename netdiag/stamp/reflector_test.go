package stamp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/internal/udpguard"
)

// quiet is how long a test watches a reflector after the packets it
// expects were handled, to see that nothing more happens: a loop on
// loopback exchanges thousands of packets in that time.
const quiet = 200 * time.Millisecond

func senderPacket(t testing.TB, seq uint32) []byte {
	t.Helper()
	b, err := SenderPacket{Seq: seq, Timestamp: time.Now()}.MarshalBinary()
	require.NoError(t, err)
	return b
}

func seen(st ReflectorStats) uint64 {
	return st.Reflected + st.Malformed + st.Replies + st.Refused + st.RateLimited
}

// settle waits until r has handled want packets, then that it stays
// idle for quiet, and returns its counters.
func settle(t *testing.T, r *Reflector, want uint64) ReflectorStats {
	t.Helper()
	require.Eventually(t, func() bool { return seen(r.Stats()) >= want }, 5*time.Second, time.Millisecond,
		"the reflector handled %d packets, want %d: %+v", seen(r.Stats()), want, r.Stats())
	time.Sleep(quiet)
	st := r.Stats()
	require.Equal(t, want, seen(st), "the reflector kept answering: %+v", st)
	return st
}

// TestReflectorNeverAnswersItself: a datagram whose source is the
// reflector's own address and port (as a forged one would be) gets no
// answer; answering it sent the reflector its own reply, for ever.
func TestReflectorNeverAnswersItself(t *testing.T) {
	for _, tc := range []struct{ network, listen, to string }{
		{"udp4", "127.0.0.1:0", "127.0.0.1"},
		{"udp", "0.0.0.0:0", "127.0.0.1"}, // a dual-stack wildcard socket, as 0.0.0.0:862 is
		{"udp", "0.0.0.0:0", "127.0.0.2"},
	} {
		t.Run(tc.listen+"->"+tc.to, func(t *testing.T) {
			r, pc := serveOn(t, &Reflector{}, tc.network, tc.listen)
			port := pc.LocalAddr().(*net.UDPAddr).Port
			to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(tc.to), uint16(port)))
			_, err := pc.WriteTo(senderPacket(t, 1), to) // from the reflector's own socket
			require.NoError(t, err)
			st := settle(t, r, 1)
			assert.EqualValues(t, 1, st.Refused)
			assert.Zero(t, st.Reflected)
		})
	}
}

// TestReflectorRefusesAForgedSourceThatIsThisHost sends, with a raw
// socket, a datagram to the reflector on loopback whose source is this
// host's own non-loopback address: answering it would send the reply to
// this host again.
func TestReflectorRefusesAForgedSourceThatIsThisHost(t *testing.T) {
	var own netip.Addr
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				own = ip
				break
			}
		}
	}
	if !own.IsValid() {
		t.Skip("this host has no IPv4 address but loopback")
	}
	r, pc := serveOn(t, &Reflector{}, "udp4", "127.0.0.1:0")
	dst := udpguard.AddrPort(pc.LocalAddr())
	sendForged(t, netip.AddrPortFrom(own, 40000), dst, senderPacket(t, 1))
	st := settle(t, r, 1)
	assert.EqualValues(t, 1, st.Refused)
	assert.Zero(t, st.Reflected)
}

// sendForged sends payload in a UDP datagram from src (any address) to
// dst through a raw socket; it needs root or CAP_NET_RAW.
func sendForged(t *testing.T, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skip("forging a source needs a raw socket (root or CAP_NET_RAW)")
	}
	require.NoError(t, err)
	defer syscall.Close(fd)
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45 // IPv4, 20-octet header
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64 // TTL
	pkt[9] = syscall.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:], s4[:])
	copy(pkt[16:], d4[:])
	binary.BigEndian.PutUint16(pkt[20:], src.Port())
	binary.BigEndian.PutUint16(pkt[22:], dst.Port())
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload))) // checksum 0: none (RFC 768)
	copy(pkt[28:], payload)
	// The kernel fills in the IP checksum and identification.
	require.NoError(t, syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: d4}))
}

// TestTwoReflectorsDoNotLoop: one datagram to reflector A with reflector
// B's address as its source (here sent from B's own socket, as a forged
// one would arrive) made A answer B, B answer A, and so on for ever. A
// answers once; B sees an answer, not a request, and drops it.
func TestTwoReflectorsDoNotLoop(t *testing.T) {
	a, pa := serveOn(t, &Reflector{}, "udp4", "127.0.0.1:0")
	b, pb := serveOn(t, &Reflector{}, "udp4", "127.0.0.1:0")
	_, err := pb.WriteTo(senderPacket(t, 1), pa.LocalAddr())
	require.NoError(t, err)
	stA := settle(t, a, 1)
	stB := settle(t, b, 1)
	assert.EqualValues(t, 1, stA.Reflected, "A answers the request once")
	assert.EqualValues(t, 1, stB.Replies, "B drops A's answer")
	assert.Zero(t, stB.Reflected)
}

// TestReflectorAndAnEchoServiceDoNotLoop: an echo service sends every
// answer back verbatim, so a forged request from it would loop.
func TestReflectorAndAnEchoServiceDoNotLoop(t *testing.T) {
	r, pr := serveOn(t, &Reflector{}, "udp4", "127.0.0.1:0")
	echo, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	echoed := make(chan int, 1000)
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echoed <- n
			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()
	_, err = echo.WriteTo(senderPacket(t, 1), pr.LocalAddr())
	require.NoError(t, err)
	st := settle(t, r, 2)
	assert.EqualValues(t, 1, st.Reflected)
	assert.EqualValues(t, 1, st.Replies, "its own answer, echoed back, is not answered")
	assert.Len(t, echoed, 1)
}

// TestReflectorLimitsAFloodFromOneSource: past its burst a source gets
// no answers, while another source still does.
func TestReflectorLimitsAFloodFromOneSource(t *testing.T) {
	frozen := time.Unix(1_800_000_000, 0)
	const burst = 5
	r, pc := serveOn(t, &Reflector{Now: func() time.Time { return frozen },
		Limits: udpguard.Limits{PerSource: 0.001, PerSourceBurst: burst, Total: 1000, TotalBurst: 1000}}, "udp4", "127.0.0.1:0")
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("udp4", pc.LocalAddr().String())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	answers := func(c net.Conn) int {
		n := 0
		buf := make([]byte, 100)
		for {
			_ = c.SetReadDeadline(time.Now().Add(quiet))
			if _, err := c.Read(buf); err != nil {
				require.ErrorIs(t, err, os.ErrDeadlineExceeded)
				return n
			}
			n++
		}
	}
	flood, other := dial("127.0.0.1"), dial("127.0.0.2")
	for i := range 30 {
		_, err := flood.Write(senderPacket(t, uint32(i)))
		require.NoError(t, err)
	}
	settle(t, r, 30)
	assert.Equal(t, burst, answers(flood))
	for i := range 3 {
		_, err := other.Write(senderPacket(t, uint32(i)))
		require.NoError(t, err)
	}
	assert.Equal(t, 3, answers(other), "another source is answered")
	st := r.Stats()
	assert.EqualValues(t, burst+3, st.Reflected)
	assert.EqualValues(t, 30-burst, st.RateLimited)
}

// TestReflectorOnAWildcardAnswersFromTheAddressAsked: on 0.0.0.0 (a
// dual-stack socket), the answer leaves from the address the request was
// sent to, which a client's connected socket (or its NAT) insists on,
// and carries the received TTL.
func TestReflectorOnAWildcardAnswersFromTheAddressAsked(t *testing.T) {
	_, pc := serveOn(t, &Reflector{}, "udp", "0.0.0.0:0")
	port := pc.LocalAddr().(*net.UDPAddr).Port
	for _, host := range []string{"127.0.0.2", "::1"} {
		c, err := net.Dial("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil && host == "::1" {
			t.Logf("no IPv6 loopback: %v", err)
			continue
		}
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(senderPacket(t, 7))
		require.NoError(t, err)
		buf := make([]byte, 100)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
		n, err := c.Read(buf)
		require.NoError(t, err, "an answer from %s", host)
		rp, err := ParseReflector(buf[:n])
		require.NoError(t, err)
		assert.Equal(t, uint32(7), rp.SenderSeq)
		assert.Equal(t, uint8(64), rp.SenderTTL, "the received TTL or hop limit (Linux default 64)")
	}
}

func TestReflectorRefusesInvalidLimits(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	err = (&Reflector{Limits: udpguard.Limits{PerSource: 1}}).Serve(pc)
	assert.ErrorContains(t, err, "rates must be positive")
}

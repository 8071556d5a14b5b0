package netdiag

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ackedBytesSupported: Linux reports what the peer acknowledged, which is
// upload goodput as the receiver saw it, with nothing still queued in our
// buffers.
const ackedBytesSupported = true

// ackedBytes is the bytes the peer has received: those acknowledged
// cumulatively (tcpi_bytes_acked, RFC 4898's HCThruOctetsAcked) plus
// those it acknowledged selectively (tcpi_sacked segments of tcpi_snd_mss
// bytes). The cumulative count alone stalls at a hole while a loss is
// repaired and then jumps over everything received past it, up to a
// whole flight: on a lossy bottleneck a window that began during a
// repair and ended after it counted that flight twice over (1.15 Mbit/s
// on the lab's 1 Mbit/s upload with a 300 ms queue, whose flight is
// 300 ms of data).
func ackedBytes(c net.Conn) int64 {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var n int64
	_ = raw.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			n = int64(info.Bytes_acked) + int64(info.Sacked)*int64(info.Snd_mss)
		}
	})
	return n
}

package netdiag

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ackedBytesSupported: Linux reports bytes the peer acknowledged
// (tcpi_bytes_acked, RFC 4898's HCThruOctetsAcked), which is upload goodput
// as the receiver saw it, with nothing still queued in our buffers.
const ackedBytesSupported = true

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
			n = int64(info.Bytes_acked)
		}
	})
	return n
}

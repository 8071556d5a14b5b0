package measureserver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// congestionControl is set on every connection where the OS allows: the
// download load a client asks for should fill the line's queue the way
// typical (CUBIC) senders do, so the client sees the bufferbloat its
// household meets; a gateway defaulting to BBR would hide it.
const congestionControl = "cubic"

func setCongestionControl(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, congestionControl)
	})
}

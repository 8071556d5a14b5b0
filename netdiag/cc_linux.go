package netdiag

import (
	"net"

	"golang.org/x/sys/unix"
)

// loadCongestionControl is set on load connections where the OS allows:
// CUBIC is what the other devices of a household run (the Linux, Windows
// and macOS default), so the queue our load builds is the queue their
// traffic builds. A host default of BBR would keep it short and hide the
// bufferbloat a video call will meet.
const loadCongestionControl = "cubic"

func setCongestionControl(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, loadCongestionControl)
	})
}

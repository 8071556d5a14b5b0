package netdiag

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setDontFragment sets DF on a UDP socket's packets and has the kernel
// ignore its path MTU cache (IP_PMTUDISC_PROBE), so each probe tests the
// path afresh.
func setDontFragment(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("not an OS socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	}); err != nil {
		return err
	}
	return serr
}

package netdiag

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// bindControl binds a socket to the interface named iface
// (SO_BINDTODEVICE), so its route and source address are that uplink's
// whatever the default route says. Since Linux 5.7 it needs no privilege.
func bindControl(iface string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.BindToDevice(int(fd), iface)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("binding to %s: %w", iface, serr)
		}
		return nil
	}
}

// markControl puts a firewall mark on a socket (SO_MARK, root only): a
// tunnel's policy routing and kill switch let marked traffic leave
// outside the tunnel, as the tunnel's own packets do.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("marking a socket 0x%x: %w", mark, serr)
		}
		return nil
	}
}

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

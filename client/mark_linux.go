package client

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tetherwfh/tether/tunnel"
)

// controlDialer dials with the TUN engine's firewall mark, so the
// connection skips the tunnel's routes and passes its kill switch; nil
// where tetherd may not set a mark (not root).
func controlDialer() *net.Dialer {
	if os.Geteuid() != 0 {
		return nil
	}
	return &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, tunnel.DefaultFwMark)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("marking the gateway's connection: %w", serr)
		}
		return nil
	}}
}

// directMark is the mark that lets a measurement's sockets pass beside
// the TUN engine's tunnel and kill switch.
func directMark() uint32 { return tunnel.DefaultFwMark }

//go:build !linux

package measureserver

import "net"

// setCongestionControl leaves the OS default.
func setCongestionControl(net.Conn) {}

//go:build !linux

package netdiag

import "net"

// setCongestionControl leaves the OS default, which is CUBIC on Windows
// and macOS already.
func setCongestionControl(net.Conn) {}

//go:build !linux && !darwin

package netdiag

import (
	"fmt"
	"runtime"
	"syscall"
)

// bindControl fails: binding a socket to an interface is not implemented
// on this OS yet (Windows would use IP_UNICAST_IF).
func bindControl(iface string) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("binding to %s: not supported on %s", iface, runtime.GOOS)
	}
}

// markControl fails: firewall marks are Linux's (SO_MARK).
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		return fmt.Errorf("marking a socket 0x%x: not supported on %s", mark, runtime.GOOS)
	}
}

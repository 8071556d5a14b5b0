//go:build !linux

package client

import "net"

// controlDialer: marks are Linux's; elsewhere the default dialer is used.
func controlDialer() *net.Dialer { return nil }

// directMark: no firewall marks here; the direct leg of a tunnel
// comparison uses the host's sockets as they are.
func directMark() uint32 { return 0 }

//go:build !linux

package client

import "net"

// controlDialer: marks are Linux's; elsewhere the default dialer is used.
func controlDialer() *net.Dialer { return nil }

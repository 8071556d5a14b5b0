//go:build !linux

package netdiag

import (
	"errors"
	"net"
)

// setDontFragment is Linux-only so far: the path MTU is then unknown.
func setDontFragment(net.Conn) error { return errors.New("DF probes are Linux-only so far") }

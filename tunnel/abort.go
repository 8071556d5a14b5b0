package tunnel

import (
	"net"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// AbortConn is a TCP connection through the userspace tunnel that can be
// reset: Abort drops what it has not sent and sends RST, as SO_LINGER 0
// and close do to a kernel socket. Close stays graceful. A measurement
// ending its load aborts, so a closed stream's send buffer does not keep
// draining through the tunnel into the next phase (netdiag's load
// streams look for an Abort method).
type AbortConn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
}

// Abort resets the connection at once.
func (c *AbortConn) Abort() { c.ep.Abort() }

// abortable wraps a netstack TCP connection in an AbortConn; anything
// else, or a gonet whose fields moved, is returned as it is.
func abortable(c net.Conn) net.Conn {
	tc, ok := c.(*gonet.TCPConn)
	if !ok {
		return c
	}
	ep, err := unexportedField[tcpip.Endpoint](tc, "ep")
	if err != nil || ep == nil {
		return c
	}
	return &AbortConn{TCPConn: tc, ep: ep}
}

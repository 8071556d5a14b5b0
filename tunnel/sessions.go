package tunnel

import (
	"errors"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// EndSessions aborts every transport endpoint the netstack holds whose
// remote address is in one of prefixes: TCP connections in any state
// (established, closing, TIME_WAIT), connected UDP sockets, and with them
// every forwarded TCP connection and UDP flow, whose host side closes as
// its netstack side ends. It returns how many endpoints it aborted.
//
// Removing a peer stops its packets, but not the stack's own state for
// its address: a download's unacknowledged segments would be
// retransmitted to whichever peer is given that address next. A gateway
// calls EndSessions right after RemovePeer, so a revocation leaves
// nothing that still sends to the address. Listeners and unconnected
// sockets (the gateway's DNS and STAMP) have no remote address and stay.
func (u *Userspace) EndSessions(prefixes ...netip.Prefix) (int, error) {
	tnet := u.live.Load()
	if tnet == nil {
		return 0, errors.New("tunnel: down")
	}
	s, err := netstackField[*stack.Stack](tnet, "stack")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ep := range s.RegisteredEndpoints() {
		ie, ok := ep.(interface{ Info() tcpip.EndpointInfo })
		if !ok {
			continue
		}
		info, ok := ie.Info().(*stack.TransportEndpointInfo)
		if !ok || info.ID.RemoteAddress.Len() == 0 {
			continue
		}
		remote := addrOf(info.ID.RemoteAddress)
		for _, p := range prefixes {
			if p.Contains(remote) {
				ep.Abort()
				n++
				break
			}
		}
	}
	return n, nil
}

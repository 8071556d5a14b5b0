package client

import "github.com/tetherwfh/tether/client/localapi"

// observations are the inputs the daemon's state is computed from.
type observations struct {
	checked   bool // at least one gateway check has finished
	reachable bool // the last check succeeded
}

// gatewayState computes the daemon's state from what it has observed. It is
// pure, so the state can never drift from its inputs.
func gatewayState(o observations) localapi.State {
	switch {
	case !o.checked:
		return localapi.StateStarting
	case o.reachable:
		return localapi.StateReady
	default:
		return localapi.StateGatewayUnreachable
	}
}

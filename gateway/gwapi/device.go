package gwapi

// PathDevice answers an enrolled device, authenticated by its
// credential ("Authorization: Bearer <device credential>"), with its
// Device: the company's current policy. A revoked device gets 403 with
// CodeRevoked, an unknown credential 401.
const PathDevice = "/v1/device"

// CodeRevoked is the error code of a revoked device's call.
const CodeRevoked = "revoked"

// Device is what the gateway says to an enrolled device about itself.
type Device struct {
	PeerID      int64       `json:"peer_id"`
	Address     string      `json:"address"`
	Policy      Policy      `json:"policy"`
	Diagnostics Diagnostics `json:"diagnostics"`
}

// Diagnostics tells a client how to diagnose its line against this
// gateway: what the gateway serves beside its API, and the names its
// filtering resolver answers in a known way.
type Diagnostics struct {
	// STAMPPort is the STAMP reflector's UDP port on the gateway's public
	// address (and, inside the tunnel, on its tunnel address: 862); zero
	// when it runs none.
	STAMPPort uint16 `json:"stamp_port,omitempty"`
	// Canary is a name the company's filter blocks (dns.canary); empty
	// when none is set, and the filter check is skipped.
	Canary string `json:"canary,omitempty"`
	// ProbeName is a name the company's resolver must resolve (a local
	// zone's), the filter check's control; empty means a public name.
	ProbeName string `json:"probe_name,omitempty"`
}

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
	PeerID  int64  `json:"peer_id"`
	Address string `json:"address"`
	Policy  Policy `json:"policy"`
}

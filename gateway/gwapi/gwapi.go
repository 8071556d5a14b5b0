// Package gwapi holds the JSON types of the gateway's HTTP API, shared by
// the gateway that serves them and the clients that read them. It imports
// nothing of the gateway itself.
package gwapi

import "time"

// Paths of the gateway's HTTP API.
const (
	PathHealth = "/healthz" // liveness: the process serves HTTP
	PathReady  = "/readyz"  // readiness: every component is up
	PathInfo   = "/v1/info" // who the gateway is
	// PathDNSExplain takes ?name= and answers with the resolver's
	// explanation (gateway/resolver.Explanation).
	PathDNSExplain = "/v1/dns/explain"
	// PathEnroll takes an EnrollRequest and answers with an Enrollment.
	PathEnroll = "/v1/enroll"
	// Admin paths need "Authorization: Bearer <admin token>".
	PathAdminTokens = "/v1/admin/tokens"
	PathAdminPeers  = "/v1/admin/peers"
	// PathAdminRevoke is POST /v1/admin/peers/{id}/revoke.
	PathAdminRevoke = "/v1/admin/peers/{id}/revoke"
)

// EnrollRequest is what a client sends to enroll.
type EnrollRequest struct {
	Token     string `json:"token"`
	PublicKey string `json:"public_key"` // base64, as wg prints it
	Label     string `json:"label"`
}

// Enrollment is everything a client needs to connect.
type Enrollment struct {
	PeerID           int64    `json:"peer_id"`
	Address          string   `json:"address"` // the client's tunnel address, with its prefix length
	GatewayPublicKey string   `json:"gateway_public_key"`
	Endpoint         string   `json:"endpoint"`
	GatewayAddress   string   `json:"gateway_address"` // the gateway inside the tunnel: DNS, measurement, probes
	DNS              []string `json:"dns,omitempty"`
	CompanyPrefixes  []string `json:"company_prefixes"`
	AllowedModes     []string `json:"allowed_modes"`
	MTU              int      `json:"mtu"`
}

// TokenRequest creates an enrollment token.
type TokenRequest struct {
	TTL   string `json:"ttl"` // a Go duration, e.g. "24h"
	Uses  int    `json:"uses"`
	Label string `json:"label"`
}

// TokenCreated carries the token's secret, shown once.
type TokenCreated struct {
	ID      string    `json:"id"`
	Secret  string    `json:"secret"`
	Expires time.Time `json:"expires"`
	Uses    int       `json:"uses"`
}

// PeerInfo is one peer in the admin listing.
type PeerInfo struct {
	ID            int64     `json:"id"`
	PublicKey     string    `json:"public_key"`
	Address       string    `json:"address"`
	Label         string    `json:"label"`
	Created       time.Time `json:"created"`
	Revoked       bool      `json:"revoked"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
}

// Revoked answers a revocation, with how long removing the peer from the
// live device took.
type Revoked struct {
	Peer        PeerInfo `json:"peer"`
	RemovedInMS float64  `json:"removed_in_ms"`
	// SessionsEnded counts the connections and flows of the peer's
	// address that the revocation ended (netstack endpoints, forwarded
	// flows, conntrack entries, the gateway's own services').
	SessionsEnded int `json:"sessions_ended"`
}

// Health is the body of PathHealth and PathReady.
type Health struct {
	Status string `json:"status"` // "ok" or "unavailable"
	// Problems lists what is not ready, in words an operator can act on.
	Problems []string `json:"problems,omitempty"`
}

// Info is the body of PathInfo.
type Info struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Now     time.Time `json:"now"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

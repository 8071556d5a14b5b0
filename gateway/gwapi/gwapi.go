package gwapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

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
	// PathAdminRevoke is POST /v1/admin/peers/{id}/revoke, a route
	// pattern; RevokePath fills it in.
	PathAdminRevoke = "/v1/admin/peers/{id}/revoke"
)

// RevokePath is PathAdminRevoke for the peer with this id.
func RevokePath(id int64) string {
	return "/v1/admin/peers/" + strconv.FormatInt(id, 10) + "/revoke"
}

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
	// Policy is the company's tunnel policy; AllowedModes repeats its
	// allowed modes for clients that predate it.
	Policy *Policy `json:"policy,omitempty"`
	// DeviceCredential authenticates this device to the gateway's API
	// (PathDevice, bundle upload, the measurement service's trusted
	// pool) when the tunnel is not there to: a bearer token, shown once
	// (the gateway keeps only its hash) and dead the moment the peer is
	// revoked. A retried enrollment gets a new one. Keep it 0600.
	DeviceCredential string `json:"device_credential,omitempty"`
	// Diagnostics says how to diagnose the line against this gateway.
	Diagnostics *Diagnostics `json:"diagnostics,omitempty"`
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

// DNSExplanation is the body of PathDNSExplain: which rule in which list
// decides a name, what it wins over, or why the name passes. It is the
// JSON of the gateway resolver's own explanation (gateway/resolver), kept
// here so a client reads it without linking the resolver; a gateway test
// holds the two to the same fields.
type DNSExplanation struct {
	Name     string      `json:"name"`
	Decision DNSDecision `json:"decision"`
	// Overrides are the rules of the other verdict that match the name
	// but lose to Decision's rule by precedence, highest first.
	Overrides []DNSDecision `json:"overrides,omitempty"`
	// CategoryOff: the rule matched, but its category does not block
	// under the gateway's policy.
	CategoryOff bool   `json:"category_off,omitempty"`
	Summary     string `json:"summary"`
}

// DNSDecision is one rule's verdict on a name.
type DNSDecision struct {
	Blocked bool `json:"blocked"`
	Allowed bool `json:"allowed_by_rule"` // an allow rule matched
	// Important: the rule ranks above plain rules of the other kind: it
	// was written $important, or it is in an allowlist.
	Important bool   `json:"important,omitempty"`
	List      string `json:"list,omitempty"`
	Category  string `json:"category,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Line      int    `json:"line,omitempty"`
}

// Error is the gateway's JSON error envelope, {"error": "..."}: the body
// of every answer that is not a success. A Client returns it, wrapped,
// for such an answer, so errors.As gives the HTTP status:
//
//	var apiErr *gwapi.Error
//	if errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden { ... }
type Error struct {
	// Status is the answer's HTTP status code; it travels in the status
	// line, not in the body.
	Status int `json:"-"`
	// Message says what went wrong, in words an operator can act on.
	Message string `json:"error"`
	// Code, when set, says what kind of error it is for programs
	// (CodeRevoked).
	Code string `json:"code,omitempty"`
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return e.Message
	}
	return fmt.Sprintf("the gateway said %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

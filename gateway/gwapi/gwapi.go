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
)

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

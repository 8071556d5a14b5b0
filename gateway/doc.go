// Package gateway is the company side of Tether: the process an operator
// runs as tether-gateway.
//
// It owns the gateway's configuration and its HTTP API (health and
// readiness now; enrollment and revocation, the measurement service,
// bundle intake, the helpdesk web and metrics as they land), and it will
// host the WireGuard endpoint and the filtering DNS resolver.
//
// Boundaries: gateway never imports client, ui or Fyne, and it builds with
// CGO_ENABLED=0. The wire types clients read live in gateway/gwapi so a
// client never links the gateway itself.
package gateway

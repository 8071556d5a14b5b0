// Package gateway is the company side of Tether: the process an operator
// runs as tether-gateway (its command line is gateway/cli).
//
// A Server (server.go) owns the gateway's configuration (config.go,
// CONFIG.md) and its secrets (secrets.go), and serves:
//   - the HTTP API: health, readiness and info (status.go), enrollment
//     with the company's policy (enroll.go), devices' credentials and
//     what a device is told about itself (device.go), the admin API
//     (admin.go), metrics and the measurement service, every route built
//     in routes.go with its auth (auth.go) and limits;
//   - the WireGuard endpoint (endpoint.go) in one of two data planes,
//     userspace netstack or kernel TUN (dataplane*.go, nat.go), with its
//     peers in gateway/peers;
//   - the filtering DNS resolver (gateway/resolver), on the host and
//     inside the tunnel, where the measurement service, STAMP and an
//     intranet page also answer (intunnel.go).
//
// Bundle intake and the helpdesk web come later, as routes in routes.go.
//
// Boundaries: gateway imports its own packages, tunnel (keys, the data
// planes), netdiag/measureserver and netdiag/stamp (the services it
// serves) and internal packages; never client, ui or Fyne, nor the rest
// of netdiag. It builds with CGO_ENABLED=0. What clients read lives in
// the wire packages gateway/gwapi and gateway/gwapi/wgconf, which import
// nothing of the gateway, so a client never links it; tests elsewhere
// start a real one with gateway/gatewaytest.
package gateway

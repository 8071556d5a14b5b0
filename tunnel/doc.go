// Package tunnel brings up WireGuard through wireguard-go
// (golang.zx2c4.com/wireguard): keys, wg-quick configs, full and split
// route planning, the TUN and userspace (netstack) engines, OS routes and
// DNS, the kill switch and tunnel health. The gateway runs its endpoint on
// the same engines; their socket can answer UDP reachability probes
// (Options.AnswerProbes, internal/wgprobe).
//
// OS-specific work sits behind small interfaces with build-tagged
// implementations and an in-memory one for tests. tunnel/tunneltest
// stands up a userspace pair for other packages' tests.
//
// Boundaries: tunnel imports only tunnel/... and internal/..., never
// client, netdiag, gateway, ui or Fyne, and builds with CGO_ENABLED=0.
// Its lab tests import gateway/resolver to run the company's resolver
// behind the tunnel; the package itself does not. Private keys never
// reach a log or an error message.
package tunnel

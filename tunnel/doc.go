// Package tunnel brings up WireGuard (golang.zx2c4.com/wireguard, or wgctrl
// where a kernel device exists): keys, wg-quick configs, full and split
// route planning, the TUN and userspace (netstack) engines, OS routes and
// DNS, the kill switch and tunnel health.
//
// OS-specific work sits behind small interfaces with build-tagged
// implementations and an in-memory one for tests.
//
// Boundaries: tunnel never imports client, netdiag, gateway, ui or Fyne,
// and builds with CGO_ENABLED=0 (its lab tests import gateway/resolver to
// run the two together; the package itself does not). Private keys never reach a log or an
// error message.
package tunnel

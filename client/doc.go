// Package client is the Tether daemon, tetherd: it owns the client's state
// machine, its configuration and the local API that the CLI and the tray
// talk to. Policy (full vs split tunnel, the hotspot suggestion), the line
// monitor and diagnostics bundles land here as later issues arrive.
//
// The daemon's state is computed, never set ad hoc: nextState derives it
// from what the daemon last observed, and tests drive it with tables.
//
// The local API's wire contract (types, paths, version, error envelope)
// lives in client/localapi; the daemon serves its routes through
// localapi.Handler, as localapitest's fake daemon does.
//
// Boundaries: client may import client/..., netdiag/..., tunnel/...,
// gateway/gwapi and internal/... (the arrows in ARCHITECTURE.md), never
// ui, Fyne or the gateway itself: it reads the gateway through
// gateway/gwapi. It builds with CGO_ENABLED=0 for linux, darwin and
// windows. Nothing of the tray imports it: ui and cmd/tether-tray reach
// the daemon through client/localapi alone, which imports nothing of
// client.
package client

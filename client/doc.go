// Package client is the Tether daemon, tetherd, the composition root of
// the client: one reconcile loop (daemon.go) that observes the engine and
// the network, computes the state with the pure nextState (machine.go)
// and starts the one operation the state calls for (connect.go): enroll,
// diagnose (netdiag), decide (client/policy), connect (an engine over
// tunnel, engine.go), rebind after a network change (netmon*.go), take
// down, or ask the gateway about this device. The state directory
// (store.go), the event bus (events.go) and the local API (api.go) sit
// beside it, and the line monitor (line.go: the probe, the counters and
// the advisor's suggestions on the event stream; the logic is in
// client/monitor). Diagnostics bundles land here later.
//
// The daemon's state is computed, never set ad hoc, from monotonic
// readings only; tests drive nextState and client/policy with tables.
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

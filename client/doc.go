// Package client is the Tether daemon, tetherd: it owns the client's state
// machine, its configuration and the local API that the CLI and the tray
// talk to. Policy (full vs split tunnel, the hotspot suggestion), the line
// monitor and diagnostics bundles land here as later issues arrive.
//
// The daemon's state is computed, never set ad hoc: nextState derives it
// from what the daemon last observed, and tests drive it with tables.
//
// Boundaries: client never imports ui or Fyne, and builds with
// CGO_ENABLED=0 for linux, darwin and windows. It reads the gateway through
// gateway/gwapi, never by linking the gateway. The wire types of the local
// API live in client/localapi, the only part of client that ui may import.
package client

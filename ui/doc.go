// Package ui is the Fyne tray and its windows. It is a view of the daemon's
// state and nothing more: it reads and commands tetherd only through the
// local API (client/localapi), declares the small Backend interface it
// needs, and its tests drive the real backend, a localapi.Client, against
// localapitest's fake daemon.
//
// Boundaries: of Tether, ui imports client/localapi only (the arrows in
// ARCHITECTURE.md also allow netdiag/report, for when the tray shows
// reports); never the daemon (package client), tunnel, netdiag's probes
// or gateway. ui and cmd/tether-tray are the only code that needs cgo.
package ui

// Package ui is the Fyne tray and its windows. It is a view of the daemon's
// state and nothing more: it reads and commands tetherd only through the
// local API (client/localapi), declares the small backend interface it
// needs, and its tests pass a fake.
//
// Boundaries: ui imports client/localapi and Fyne, never tunnel, netdiag,
// gateway or the daemon's internals. ui and cmd/tether-tray are the only
// code that needs cgo.
package ui

// Package localapi is the daemon's local API as its clients see it: the
// JSON types, the error envelope, the API's version, and a small HTTP
// client over the daemon's unix socket. The CLI and the tray import this
// package and nothing else of the daemon; the tray links nothing else of
// Tether's client side.
//
// The wire contract, which both the daemon and the fake daemon in
// localapitest serve through Handler:
//   - paths live under /v1/, and APIVersion is 1;
//   - every answer carries HeaderAPIVersion, and Client refuses an
//     answer without this program's version with a *VersionError;
//   - every error answer (4xx, 5xx) is an Error, as JSON; Client returns
//     it as a *Error, so callers use errors.As.
//
// Boundaries: localapi imports the standard library only, and of Tether at
// most netdiag/report (the report type the API will carry). It never
// imports the daemon (package client), tunnel, netdiag's probes, gateway
// or Fyne, and builds with CGO_ENABLED=0 everywhere.
package localapi

// Package report is the diagnostics report, tether.report/v1: the types
// netdiag fills and everyone else reads (the CLI, the daemon, the tray,
// the helpdesk), the verdict and suggestion IDs, the areas and
// severities, and the one text rendering of a report (Render), which
// `tether diag` prints and the dev stack nests in its output. Views that
// draw their own (the tray, the helpdesk page) group findings with
// Findings, as Render does. netdiag/REPORT.md is the schema.
//
// Boundaries: report is a leaf. It imports only the standard library and
// internal/termsafe, never probe code (netdiag, miekg/dns, pro-bing,
// netlink, gVisor) nor anything of the client, tunnel or gateway, so the
// tray and the gateway can link it cheaply. Its JSON is the contract:
// fields are only ever added, never renamed or removed.
package report

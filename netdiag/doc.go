// Package netdiag measures a home line and says what it means: latency
// idle and under load (ICMP through pro-bing, with TCP and UDP fallbacks),
// throughput, responsiveness, jitter and loss, DNS health, path MTU, UDP
// reachability, captive portals, and interface and Wi-Fi facts. It turns
// the measurements into a report with verdicts, each carrying the
// threshold that fired it.
//
// A probe is Name() plus Run(ctx) returning a typed result; one runner
// executes probes in parallel under one deadline and assembles the report
// in one place.
//
// Boundaries: netdiag never imports client, tunnel, gateway, ui or Fyne; it
// measures, and others decide. It builds with CGO_ENABLED=0 on linux,
// darwin and windows.
package netdiag

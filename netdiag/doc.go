// Package netdiag measures a home line and says what it means: latency
// idle and under load (ICMP through pro-bing, with STAMP and TCP
// fallbacks), throughput, responsiveness, jitter and loss, DNS health,
// path MTU, UDP reachability, captive portals, and interface and Wi-Fi
// facts. It fills a report (netdiag/report) with verdicts, each carrying
// the threshold that fired it, and suggestions a person can act on.
//
// A Client, built from a documented Config (logger, clock, dialer and
// pinger injected), runs every check under one deadline (Run): first, at
// once, idle latency, the gateway's service, DNS, the path and the local
// network; then each direction of the line loaded in turn, with latency
// and RPM probes riding along. A pure function turns the measurements
// into verdicts and suggestions. The latency prober (Prober) is exported
// for callers that probe on their own, as the monitor will.
//
// Boundaries: netdiag imports only netdiag/... and internal/..., never
// client, tunnel, gateway, ui or Fyne: it measures, and others decide
// (the tunnel's mode is the client's policy). To measure through a
// tunnel, a caller injects the tunnel's dialer and pinger (Config.Dial,
// Config.Ping). It builds with CGO_ENABLED=0 on linux, darwin and
// windows.
package netdiag

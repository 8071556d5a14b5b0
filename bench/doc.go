// Package bench runs load scenarios against a gateway and reports them:
// API request latency now; tunnel throughput, handshake rate and DNS load
// as those components land. Every report quotes medians and percentiles
// and the scenario's parameters, so two runs can be compared.
//
// Boundaries: bench drives the gateway from outside, through its network
// interfaces, never by calling into it; it never imports ui or Fyne and
// builds with CGO_ENABLED=0.
package bench

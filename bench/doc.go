// Package bench runs load scenarios against a gateway and reports them:
// API request latency (RunAPI), enrollment, handshake and revocation at
// scale with the gateway's memory (RunPeers), and the filtering resolver
// beside CoreDNS and Unbound (RunDNS). Every report quotes medians and
// percentiles and the scenario's parameters, so two runs can be compared.
//
// One harness starts the gateway a scenario runs against (gateway.go): in
// this process (StartEmbedded) or as a tether-gateway process
// (StartProcess), its config built as a gateway.Config and written by
// gateway.WriteConfig.
//
// Boundaries: bench imports the gateway only to configure and start it;
// a scenario then drives it from outside, through its network interfaces
// (the API through gwapi.Client, WireGuard through tunnel, DNS), never by
// calling into it. bench never imports client, ui or Fyne and builds with
// CGO_ENABLED=0.
package bench

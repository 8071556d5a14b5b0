// Package resolver is the gateway's filtering DNS resolver, built on
// github.com/miekg/dns: block lists in hosts, plain-domain and
// Adblock-style formats compiled into a compact hash set; a handler chain
// (rate limit, validate, filter, local zones, cache, upstream) assembled
// in one place (chain.go), whose first links the UDP fast path runs in
// wire form; and upstreams over UDP, TCP and DNS-over-TLS.
//
// Boundaries: resolver imports nothing from client, ui or tunnel, and
// builds with CGO_ENABLED=0. Query logs are personal data: off unless
// configured.
package resolver

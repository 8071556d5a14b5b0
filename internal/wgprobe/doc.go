// Package wgprobe is the UDP reachability probe a Tether gateway answers
// on its WireGuard port. Networks that block UDP (hotels, guest Wi-Fi)
// usually block by port, so the probe must use the very port WireGuard
// listens on; yet a WireGuard handshake from an unknown key gets no answer
// at all, by design. The gateway's socket wrapper therefore answers these
// packets itself and never hands them to WireGuard: their first byte
// (0xff) is no WireGuard message type (those are 1 to 4), so no WireGuard
// packet is ever taken for a probe.
//
// A request is "\xffTPQ" and an 8-byte nonce; the answer is "\xffTPA" and
// the same nonce: the same size, so the gateway amplifies nothing.
//
// Boundaries: wgprobe imports only the standard library. Both ends use
// it: the gateway's WireGuard socket answers (tunnel, with
// Options.AnswerProbes) and netdiag's UDP reachability check asks. It is
// a leaf of its own so that neither of them imports the other.
package wgprobe

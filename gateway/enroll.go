package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/peers"
	"github.com/tetherwfh/tether/internal/keyrate"
	"github.com/tetherwfh/tether/tunnel"
)

// maxEnrollBody bounds an enrollment's and a token request's body: a key,
// a token and a label take well under 1 KiB.
const maxEnrollBody = 4 << 10

// handleEnroll enrolls a device: its public key, with an enrollment
// token. A client network may try wireguard.enroll_per_minute times a
// minute. The peer is stored, then set on the live device, before the
// answer says how to connect, with the company's policy, the diagnostics
// hints and the device's credential; a replay of the same key and token
// gets the same enrollment with a new credential, and the one before it
// dies.
func (e *wgEndpoint) handleEnroll(w http.ResponseWriter, r *http.Request) {
	if !e.enrollLimit.Allow(keyrate.Key(clientAddr(r), 0, 0)) {
		e.count("limited")
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, gwapi.Error{Message: "too many enrollment attempts from this address; wait a minute"})
		return
	}
	var req gwapi.EnrollRequest
	body, err := io.ReadAll(r.Body) // limited to maxEnrollBody (routes.go)
	if err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusRequestEntityTooLarge, gwapi.Error{Message: fmt.Sprintf("the request body is over %d bytes", maxEnrollBody)})
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "the body is not an enrollment request: " + err.Error()})
		return
	}
	key, err := tunnel.ParsePublicKey(req.PublicKey)
	if err == nil && key == e.key.Public() {
		err = errors.New("public key: this is the gateway's own key")
	}
	if err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "public_key: " + err.Error()})
		return
	}
	if err := gwapi.CheckLabel(req.Label); err != nil {
		e.count("invalid")
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	enr, err := e.store.Enroll(r.Context(), peers.EnrollRequest{Secret: req.Token, Key: key, Label: req.Label,
		Pool: e.cfg.Address.Masked(), Reserved: []netip.Addr{e.cfg.Address.Addr()}, Quarantine: e.cfg.AddressQuarantine, Now: e.now()})
	switch {
	case errors.Is(err, peers.ErrTokenUnknown), errors.Is(err, peers.ErrTokenExpired), errors.Is(err, peers.ErrTokenUsedUp):
		e.count("refused")
		writeJSON(w, http.StatusForbidden, gwapi.Error{Message: err.Error()})
		return
	case errors.Is(err, peers.ErrKeyEnrolled):
		e.count("refused")
		writeJSON(w, http.StatusConflict, gwapi.Error{Message: err.Error()})
		return
	case errors.Is(err, peers.ErrPoolExhausted):
		e.count("failed")
		writeJSON(w, http.StatusServiceUnavailable, gwapi.Error{Message: err.Error()})
		return
	case err != nil:
		e.count("failed")
		e.log.Error("enrollment failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "enrollment failed; see the gateway log"})
		return
	}
	p := enr.Peer
	if enr.Replayed {
		e.devices.forget(p.ID) // the credential before is dead
	}
	host := netip.PrefixFrom(p.Address, p.Address.BitLen())
	// A replay sets the peer again: the first attempt may have died
	// before the live device had it.
	if err := e.dev.SetPeer(r.Context(), tunnel.Peer{PublicKey: key, AllowedIPs: []netip.Prefix{host}}); err != nil {
		// The store has the peer; the next start loads it. Say so.
		e.log.Error("enrolled, but the live device refused the peer", "peer", p.ID, "err", err)
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "enrolled, but the live device refused the peer: " + err.Error()})
		return
	}
	if enr.Replayed {
		e.count("replayed")
	} else {
		e.count("ok")
	}
	pol, diag := e.policy, e.diagnostics()
	en := gwapi.Enrollment{
		PeerID: p.ID, Address: netip.PrefixFrom(p.Address, e.cfg.Address.Bits()).String(),
		GatewayPublicKey: e.key.Public().String(), Endpoint: e.cfg.Endpoint,
		GatewayAddress: e.cfg.Address.Addr().String(), DNS: []string{e.cfg.Address.Addr().String()},
		AllowedModes: pol.AllowedModes, MTU: tunnel.DefaultMTU,
		Policy: &pol, DeviceCredential: enr.Credential, Diagnostics: &diag,
	}
	for _, c := range e.cfg.CompanyPrefixes {
		en.CompanyPrefixes = append(en.CompanyPrefixes, c.String())
	}
	writeJSON(w, http.StatusOK, en)
}

package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/peers"
	"github.com/tetherwfh/tether/internal/termsafe"
	"github.com/tetherwfh/tether/tunnel"
)

// The admin API's handlers: enrollment tokens, the peer list, revocation
// and DNS explanations. routes.go puts the admin token in front of them.

// Token limits.
const (
	// maxTokenTTL: an enrollment token is for onboarding a device, and
	// one that outlives a year is a standing password. It also keeps the
	// expiry far from int64 nanoseconds' end (year 2262).
	maxTokenTTL = 366 * 24 * time.Hour
	// maxTokenUses bounds a batch token: a whole office, not unbounded.
	maxTokenUses = 10000
)

func (e *wgEndpoint) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req gwapi.TokenRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil { // limited to maxEnrollBody (routes.go)
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "the body is not a token request: " + err.Error()})
		return
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil || ttl <= 0 || ttl > maxTokenTTL {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: fmt.Sprintf("ttl %q: want a positive duration of at most %s, such as 24h", termsafe.String(req.TTL), maxTokenTTL)})
		return
	}
	if req.Uses < 1 || req.Uses > maxTokenUses {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: fmt.Sprintf("uses %d: want 1 to %d", req.Uses, maxTokenUses)})
		return
	}
	if err := gwapi.CheckLabel(req.Label); err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	t, secret, err := e.store.CreateToken(r.Context(), req.Label, ttl, req.Uses, e.now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, gwapi.TokenCreated{ID: t.ID, Secret: secret, Expires: t.Expires, Uses: t.UsesLeft})
}

func (e *wgEndpoint) peerInfos(ctx context.Context) ([]gwapi.PeerInfo, error) {
	ps, err := e.store.Peers(ctx)
	if err != nil {
		return nil, err
	}
	stats, _ := e.dev.PeerStats()
	byKey := map[tunnel.PublicKey]tunnel.PeerStats{}
	for _, s := range stats {
		byKey[s.PublicKey] = s
	}
	out := []gwapi.PeerInfo{}
	for _, p := range ps {
		pi := gwapi.PeerInfo{ID: p.ID, PublicKey: p.PublicKey.String(), Address: p.Address.String(), Label: p.Label,
			Created: p.Created, Revoked: p.Revoked, RevokedAt: p.RevokedAt}
		if s, ok := byKey[p.PublicKey]; ok && !p.Revoked {
			pi.LastHandshake, pi.RxBytes, pi.TxBytes = s.LastHandshake, s.RxBytes, s.TxBytes
		}
		out = append(out, pi)
	}
	return out, nil
}

func (e *wgEndpoint) handlePeers(w http.ResponseWriter, r *http.Request) {
	ps, err := e.peerInfos(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// handleRevoke removes the peer from the live device first, then ends
// every session of its address, then records it, which kills its device
// credential: access ends before the call returns, and nothing the
// gateway still holds for the address can reach whichever peer is given
// it next.
func (e *wgEndpoint) handleRevoke(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: "peer id: not a number"})
		return
	}
	p, err := e.store.Peer(r.Context(), id)
	if errors.Is(err, peers.ErrPeerUnknown) {
		writeJSON(w, http.StatusNotFound, gwapi.Error{Message: err.Error()})
		return
	} else if err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: err.Error()})
		return
	}
	start := time.Now()
	if err := e.dev.RemovePeer(p.PublicKey); err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: err.Error()})
		return
	}
	took := time.Since(start)
	ended := e.endSessions(p.Address)
	if e.metrics != nil {
		e.metrics.revocations.Inc()
	}
	p, err = e.store.Revoke(r.Context(), id, e.now())
	e.devices.forget(id) // its credential is dead: no cached trust outlives the call
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "removed from the device, but not recorded: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, gwapi.Revoked{RemovedInMS: float64(took.Microseconds()) / 1000, SessionsEnded: ended,
		Peer: gwapi.PeerInfo{ID: p.ID, PublicKey: p.PublicKey.String(), Address: p.Address.String(), Label: p.Label,
			Created: p.Created, Revoked: p.Revoked, RevokedAt: p.RevokedAt}})
}

// handleExplain says why a name is blocked or allowed. Until the admin
// API's token covers it, routes.go lets loopback callers only reach it:
// the decision itself is no secret, but the lists are the company's.
func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) {
	if s.dns == nil {
		writeJSON(w, http.StatusNotFound, gwapi.Error{Message: "this gateway runs no DNS resolver"})
		return
	}
	name := r.URL.Query().Get("name")
	ex, err := s.dns.Explain(name)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, gwapi.Error{Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

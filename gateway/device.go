package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/peers"
	"github.com/tetherwfh/tether/internal/keyrate"
)

// Device credentials: enrollment gives each device one (a bearer token
// the store keeps only a hash of), and with it the device asks the
// gateway about itself (GET /v1/device) and is served from the
// measurement service's trusted pool on the API, where the tunnel is not
// there to vouch for it. A credential is never logged.

// Limits of device authentication.
const (
	// deviceFailsPerMinute and deviceFailBurst bound wrong credentials
	// per client network (an IPv4 address, an IPv6 /64): past them, the
	// network's requests are refused (429) or left in the public pool
	// without a check, so nobody guesses credentials online. A network's
	// devices with good credentials spend nothing.
	deviceFailsPerMinute = 10
	deviceFailBurst      = 20
	// deviceCacheTTL is how long a verified credential is trusted without
	// asking the store again. A revocation or a new enrollment of the
	// device forgets it at once; the TTL bounds only what the store
	// learns from elsewhere (another gateway sharing it).
	deviceCacheTTL = time.Minute
	// maxDeviceCache bounds the verified credentials kept: about 100
	// bytes each. Past it, credentials are checked in the store each time.
	maxDeviceCache = 10000
)

// errDeviceLimited: the client network spent its wrong credentials, and
// nothing was checked.
var errDeviceLimited = errors.New("too many wrong device credentials from this network; wait a minute")

// deviceAuth verifies device credentials. Safe for concurrent use.
type deviceAuth struct {
	store peers.Store
	now   func() time.Time
	fails *keyrate.Limiter

	mu sync.Mutex
	// gen counts forgets, so a check that read the store before one
	// caches nothing after it.
	gen      uint64
	verified map[[sha256.Size]byte]verifiedDevice
}

type verifiedDevice struct {
	peer  int64
	until time.Time
}

func newDeviceAuth(store peers.Store, now func() time.Time) *deviceAuth {
	return &deviceAuth{store: store, now: now, verified: map[[sha256.Size]byte]verifiedDevice{},
		fails: keyrate.New(keyrate.Config{Rate: deviceFailsPerMinute / 60.0, Burst: deviceFailBurst, Now: now})}
}

// verify asks the store whose credential cred is, for a request from
// client: the store's answer (peers.ErrCredentialUnknown, or the peer
// with peers.ErrPeerRevoked), or errDeviceLimited. A wrong credential
// spends one of the client network's failures.
func (a *deviceAuth) verify(ctx context.Context, client netip.Addr, cred string) (peers.Peer, error) {
	key := keyrate.Key(client, 0, 0)
	if !a.fails.Holds(key, 1) {
		return peers.Peer{}, errDeviceLimited
	}
	a.mu.Lock()
	gen := a.gen
	a.mu.Unlock()
	p, err := a.store.Device(ctx, cred)
	if errors.Is(err, peers.ErrCredentialUnknown) {
		a.fails.Allow(key)
	}
	if err != nil {
		return p, err
	}
	if h, ok := peers.CredentialHash(cred); ok {
		a.remember(h, p.ID, gen)
	}
	return p, nil
}

// remember caches h as peer's verified credential, unless a forget came
// since gen.
func (a *deviceAuth) remember(h [sha256.Size]byte, peer int64, gen uint64) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen != gen {
		return
	}
	if len(a.verified) >= maxDeviceCache {
		for k, v := range a.verified {
			if !now.Before(v.until) {
				delete(a.verified, k)
			}
		}
		if len(a.verified) >= maxDeviceCache {
			return
		}
	}
	a.verified[h] = verifiedDevice{peer: peer, until: now.Add(deviceCacheTTL)}
}

// forget drops what is cached of peer's credentials: it was revoked, or
// enrolled again with a new credential.
func (a *deviceAuth) forget(peer int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	for k, v := range a.verified {
		if v.peer == peer {
			delete(a.verified, k)
		}
	}
}

// trusted reports whether r carries a live device credential, from the
// cache or else the store.
func (a *deviceAuth) trusted(r *http.Request) bool {
	cred, ok := bearer(r)
	if !ok {
		return false // no credential: the public pool, and no failure
	}
	if h, ok := peers.CredentialHash(cred); ok {
		a.mu.Lock()
		v, hit := a.verified[h]
		a.mu.Unlock()
		if hit && a.now().Before(v.until) {
			return true
		}
	}
	_, err := a.verify(r.Context(), clientAddr(r), cred)
	return err == nil
}

// bearer is r's bearer token, if it carries one.
func bearer(r *http.Request) (string, bool) {
	t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return t, ok && t != ""
}

// deviceTrusted is the API measurement service's Authenticate: a request
// with a live device credential is served from the trusted pool.
func (s *Server) deviceTrusted(r *http.Request) bool {
	return s.wg != nil && s.wg.devices.trusted(r)
}

// diagnostics tells devices how to diagnose their line against this
// gateway: the STAMP reflector's port as it listens, and the names of
// the diagnostics: section.
func (s *Server) diagnostics() gwapi.Diagnostics {
	d := gwapi.Diagnostics{Canary: s.cfg.Diagnostics.Canary, ProbeName: s.cfg.Diagnostics.ProbeName}
	if a, ok := s.STAMPAddr().(interface{ AddrPort() netip.AddrPort }); ok {
		d.STAMPPort = a.AddrPort().Port()
	}
	return d
}

// handleDevice answers an enrolled device about itself: its peer, the
// company's current policy and the diagnostics hints. A revoked device
// is told since when (403, gwapi.CodeRevoked); a missing or unknown
// credential gets 401.
func (e *wgEndpoint) handleDevice(w http.ResponseWriter, r *http.Request) {
	cred, ok := bearer(r)
	if !ok {
		e.countDevice("unknown")
		w.Header().Set("WWW-Authenticate", `Bearer realm="tether-gateway"`)
		writeJSON(w, http.StatusUnauthorized, gwapi.Error{Message: "a device credential is required (Authorization: Bearer <the credential enrollment gave>)"})
		return
	}
	p, err := e.devices.verify(r.Context(), clientAddr(r), cred)
	switch {
	case errors.Is(err, errDeviceLimited):
		e.countDevice("limited")
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, gwapi.Error{Message: err.Error()})
		return
	case errors.Is(err, peers.ErrPeerRevoked):
		e.countDevice("revoked")
		writeJSON(w, http.StatusForbidden, gwapi.Error{Code: gwapi.CodeRevoked,
			Message: fmt.Sprintf("this device was revoked at %s: ask the company for a new enrollment token and enroll it again", p.RevokedAt.UTC().Format(time.RFC3339))})
		return
	case errors.Is(err, peers.ErrCredentialUnknown):
		e.countDevice("unknown")
		w.Header().Set("WWW-Authenticate", `Bearer realm="tether-gateway", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, gwapi.Error{Message: "unknown device credential: it was never given, or a later enrollment of this device replaced it; enroll again"})
		return
	case err != nil:
		e.countDevice("failed")
		e.log.Error("checking a device credential failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, gwapi.Error{Message: "checking the device failed; see the gateway log"})
		return
	}
	e.countDevice("ok")
	writeJSON(w, http.StatusOK, gwapi.Device{PeerID: p.ID, Address: netip.PrefixFrom(p.Address, e.cfg.Address.Bits()).String(),
		Policy: e.policy, Diagnostics: e.diagnostics()})
}

func (e *wgEndpoint) countDevice(result string) {
	if e.metrics != nil {
		e.metrics.devices.WithLabelValues(result).Inc()
	}
}

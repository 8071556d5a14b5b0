// Package peers is the gateway's record of who may connect: enrollment
// tokens, enrolled peers with their tunnel addresses and device
// credentials, and revocations.
//
// Store is an interface so a multi-gateway deployment can put it in
// PostgreSQL later; the embedded default is SQLite (modernc.org/sqlite,
// pure Go, so the gateway still builds with CGO_ENABLED=0).
package peers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/tetherwfh/tether/tunnel"
)

// Errors a Store returns; callers map them to HTTP statuses.
var (
	ErrTokenUnknown  = errors.New("unknown enrollment token")
	ErrTokenExpired  = errors.New("enrollment token expired")
	ErrTokenUsedUp   = errors.New("enrollment token already used")
	ErrPoolExhausted = errors.New("no free tunnel address left in the pool")
	ErrKeyEnrolled   = errors.New("this public key is already enrolled")
	ErrPeerUnknown   = errors.New("unknown peer")
	// ErrCredentialUnknown: no live credential is this one (malformed,
	// never given, or replaced by a later enrollment of its device).
	ErrCredentialUnknown = errors.New("unknown device credential")
	// ErrPeerRevoked: the credential's peer was revoked.
	ErrPeerRevoked = errors.New("this device was revoked")
)

// DefaultQuarantine is how long a revoked peer's address stays out of
// use. Whatever of the old session survives revocation in the network
// (a TCP endpoint in TIME_WAIT, 60 s on Linux; UDP conntrack, 120 s for a
// stream; a WireGuard session, at most Reject-After-Time, 180 s) is gone
// long before, so a new peer never receives a byte meant for the old one.
const DefaultQuarantine = 15 * time.Minute

// EnrollRequest is one enrollment.
type EnrollRequest struct {
	// Secret is the token as the client sent it.
	Secret string
	Key    tunnel.PublicKey
	Label  string
	// Pool is the prefix tunnel addresses come from; Reserved are never
	// handed out (the gateway's own).
	Pool     netip.Prefix
	Reserved []netip.Addr
	// Quarantine keeps an address unused this long after its peer was
	// revoked; zero means DefaultQuarantine, negative none.
	Quarantine time.Duration
	Now        time.Time
}

// Peer is an enrolled client.
type Peer struct {
	ID        int64            `json:"id"`
	PublicKey tunnel.PublicKey `json:"public_key"`
	Address   netip.Addr       `json:"address"`
	Label     string           `json:"label"`
	Created   time.Time        `json:"created"`
	LastSeen  time.Time        `json:"last_seen,omitzero"`
	Revoked   bool             `json:"revoked"`
	RevokedAt time.Time        `json:"revoked_at,omitzero"`
	// TokenID is the token the peer enrolled with.
	TokenID string `json:"token_id,omitempty"`
}

// Enrolled is what an enrollment gives.
type Enrolled struct {
	Peer Peer
	// Credential is the device's credential (a bearer token), shown
	// once: the store keeps only its hash.
	Credential string
	// Replayed is true when the key was already enrolled with this very
	// token: the peer is the one enrolled then, the credential a new one.
	Replayed bool
}

// Token is an enrollment token as stored: only a hash of its secret.
type Token struct {
	ID       string    `json:"id"` // public, for listing and revoking
	Label    string    `json:"label"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	UsesLeft int       `json:"uses_left"`
	hash     [sha256.Size]byte
}

// Store keeps tokens and peers. Every method is safe for concurrent use,
// and every change is atomic: a failed call changes nothing.
type Store interface {
	// CreateToken stores a new token and returns it with its secret,
	// which is shown once and never stored.
	CreateToken(ctx context.Context, label string, ttl time.Duration, uses int, now time.Time) (Token, string, error)
	// Enroll spends one use of the token and adds a peer for the key,
	// with a new device credential, in one transaction. The address is
	// the lowest never-used one of the pool, else the one whose peer was
	// revoked longest ago, and never one revoked within the quarantine.
	// Enroll is idempotent: a key already enrolled with this very token
	// gets its peer back (Replayed) and spends nothing, so a client whose
	// answer was lost can retry; since only a hash of the credential is
	// kept, the retry gets a new credential, and the one before it dies
	// as the retry commits.
	Enroll(ctx context.Context, req EnrollRequest) (Enrolled, error)
	// Device is the peer whose credential this is. A credential that is
	// malformed, was never given, or was replaced by a later Enroll of
	// its peer is ErrCredentialUnknown; one of a revoked peer returns the
	// peer (to say since when) with ErrPeerRevoked, from the moment Revoke
	// has returned. The comparison takes constant time in the secret, and
	// the store keeps nothing from which the credential can be rebuilt.
	Device(ctx context.Context, credential string) (Peer, error)
	Peers(ctx context.Context) ([]Peer, error)
	Peer(ctx context.Context, id int64) (Peer, error)
	// Revoke marks the peer revoked, which kills its device credential;
	// its address is free again once the quarantine has passed.
	Revoke(ctx context.Context, id int64, now time.Time) (Peer, error)
	// Seen records a handshake time.
	Seen(ctx context.Context, id int64, at time.Time) error
	Tokens(ctx context.Context) ([]Token, error)
	// Ping checks the store answers, for readiness.
	Ping(ctx context.Context) error
	Close() error
}

// tokenPrefix marks Tether enrollment tokens, so a leaked one is easy to
// recognise (and to search for in logs and repositories).
const tokenPrefix = "tten_"

// newTokenSecret returns an ID and a secret: "tten_<id>_<random>".
func newTokenSecret() (id, secret string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("peers: token: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString(b[:])
	id = enc[:8]
	return id, tokenPrefix + id + "_" + enc[8:], nil
}

// parseTokenSecret splits a secret into its ID and the hash to compare.
func parseTokenSecret(secret string) (string, [sha256.Size]byte, error) {
	// Fixed positions, not a split on "_": base64url uses "_" too.
	secret = strings.TrimSpace(secret)
	rest, ok := strings.CutPrefix(secret, tokenPrefix)
	if !ok || len(rest) != 8+1+24 || rest[8] != '_' {
		return "", [sha256.Size]byte{}, ErrTokenUnknown
	}
	return rest[:8], sha256.Sum256([]byte(secret)), nil
}

// credentialPrefix marks Tether device credentials, as tokenPrefix does
// enrollment tokens.
const credentialPrefix = "ttdc_"

// Credential lengths: an 8-character ID (48 random bits, to find the
// row) and a 32-character secret (192 random bits), base64url.
const (
	credentialIDLen     = 8
	credentialSecretLen = 32
)

// newCredential returns a device credential, "ttdc_<id>_<secret>", its
// ID and the hash the store keeps.
func newCredential() (cred, id string, hash [sha256.Size]byte, err error) {
	var b [6 + 24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", hash, fmt.Errorf("peers: device credential: %w", err)
	}
	enc := base64.RawURLEncoding.EncodeToString(b[:])
	id = enc[:credentialIDLen]
	cred = credentialPrefix + id + "_" + enc[credentialIDLen:]
	return cred, id, sha256.Sum256([]byte(cred)), nil
}

// parseCredential splits a credential into its ID and the hash to
// compare. A 192-bit random secret needs no slow hash: SHA-256 is
// preimage-resistant far beyond any search of that space.
func parseCredential(cred string) (string, [sha256.Size]byte, error) {
	rest, ok := strings.CutPrefix(cred, credentialPrefix)
	if !ok || len(rest) != credentialIDLen+1+credentialSecretLen || rest[credentialIDLen] != '_' {
		return "", [sha256.Size]byte{}, ErrCredentialUnknown
	}
	return rest[:credentialIDLen], sha256.Sum256([]byte(cred)), nil
}

// CredentialHash is the hash under which the store keeps cred, for
// callers that cache verified credentials without keeping them; ok is
// false for what is no credential at all.
func CredentialHash(cred string) (hash [sha256.Size]byte, ok bool) {
	_, h, err := parseCredential(cred)
	return h, err == nil
}

// pickAddress chooses a peer's address: the lowest host address of pool
// never handed out (not the network address, not the IPv4 broadcast, not
// reserved, not live), else the free one whose peer was revoked longest
// ago, as long as that was before quarantineEnd. released maps addresses
// with no live peer to their latest revocation.
func pickAddress(pool netip.Prefix, live map[netip.Addr]bool, released map[netip.Addr]time.Time, reserved []netip.Addr, quarantineEnd time.Time) (netip.Addr, error) {
	pool = pool.Masked()
	skip := map[netip.Addr]bool{}
	for _, r := range reserved {
		skip[r] = true
	}
	last := netipx.PrefixLastIP(pool)
	for a := pool.Addr().Next(); a.IsValid() && pool.Contains(a); a = a.Next() {
		if pool.Addr().Is4() && a == last {
			break // broadcast
		}
		if _, used := released[a]; !live[a] && !used && !skip[a] {
			return a, nil
		}
	}
	var best netip.Addr
	var bestAt time.Time
	quarantined := 0
	for a, at := range released {
		switch {
		case live[a] || skip[a] || !pool.Contains(a):
		case !at.Before(quarantineEnd):
			quarantined++
		case !best.IsValid() || at.Before(bestAt) || (at.Equal(bestAt) && a.Less(best)):
			best, bestAt = a, at
		}
	}
	if best.IsValid() {
		return best, nil
	}
	if quarantined > 0 {
		return netip.Addr{}, fmt.Errorf("%w (%d addresses are held back after revocations; they become free again after the quarantine)", ErrPoolExhausted, quarantined)
	}
	return netip.Addr{}, ErrPoolExhausted
}

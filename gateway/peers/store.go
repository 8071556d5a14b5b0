// Package peers is the gateway's record of who may connect: enrollment
// tokens, enrolled peers with their tunnel addresses, and revocations.
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
)

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
	// Enroll spends one use of the token named by secret and adds a peer
	// for key with the lowest free address in pool, in one transaction.
	Enroll(ctx context.Context, secret string, key tunnel.PublicKey, label string, pool netip.Prefix, reserved []netip.Addr, now time.Time) (Peer, error)
	Peers(ctx context.Context) ([]Peer, error)
	Peer(ctx context.Context, id int64) (Peer, error)
	// Revoke marks the peer revoked and frees its address for reuse.
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

// hosts returns the usable host addresses of pool in order: not the
// network address, not the broadcast address (IPv4), not reserved ones.
func nextFree(pool netip.Prefix, used map[netip.Addr]bool, reserved []netip.Addr) (netip.Addr, error) {
	pool = pool.Masked()
	skip := map[netip.Addr]bool{}
	for _, r := range reserved {
		skip[r] = true
	}
	last := lastAddr(pool)
	for a := pool.Addr().Next(); a.IsValid() && pool.Contains(a); a = a.Next() {
		if pool.Addr().Is4() && a == last {
			break // broadcast
		}
		if !used[a] && !skip[a] {
			return a, nil
		}
	}
	return netip.Addr{}, ErrPoolExhausted
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

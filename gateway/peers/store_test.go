package peers

import (
	"context"
	"database/sql"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/tunnel"
)

var (
	t0       = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	pool     = netip.MustParsePrefix("10.99.0.0/24")
	gatewayA = netip.MustParseAddr("10.99.0.1")
)

func open(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "gw", "peers.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// enroll is Enroll with the default quarantine, keeping the peer only.
func enroll(t *testing.T, s Store, secret string, k tunnel.PublicKey, label string, pool netip.Prefix, reserved []netip.Addr, now time.Time) (Peer, error) {
	t.Helper()
	en, err := s.Enroll(context.Background(), EnrollRequest{Secret: secret, Key: k, Label: label, Pool: pool, Reserved: reserved, Now: now})
	return en.Peer, err
}

func key(t *testing.T) tunnel.PublicKey {
	t.Helper()
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	return k.Public()
}

func TestTokenLifecycle(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	tok, secret, err := s.CreateToken(ctx, "laptop", time.Hour, 2, t0)
	require.NoError(t, err)
	assert.Regexp(t, `^tten_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{24}$`, secret)
	assert.Equal(t, t0.Add(time.Hour), tok.Expires)

	p1, err := enroll(t, s, secret, key(t), "alice", pool, []netip.Addr{gatewayA}, t0)
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.2", p1.Address.String(), "the gateway's own address is reserved")
	p2, err := enroll(t, s, secret, key(t), "bob", pool, []netip.Addr{gatewayA}, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.3", p2.Address.String())
	_, err = enroll(t, s, secret, key(t), "carol", pool, nil, t0.Add(2*time.Minute))
	assert.ErrorIs(t, err, ErrTokenUsedUp)

	_, secret2, err := s.CreateToken(ctx, "", time.Hour, 1, t0)
	require.NoError(t, err)
	_, err = enroll(t, s, secret2, key(t), "late", pool, nil, t0.Add(time.Hour))
	assert.ErrorIs(t, err, ErrTokenExpired, "a token expires at its TTL exactly")

	for _, bad := range []string{"", "tten_", "nonsense", secret2[:len(secret2)-1] + "x", "tten_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAA"} {
		_, err = enroll(t, s, bad, key(t), "x", pool, nil, t0)
		assert.ErrorIs(t, err, ErrTokenUnknown, "%q", bad)
	}
	toks, err := s.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, toks, 2)
	assert.Equal(t, 0, toks[0].UsesLeft)
}

func TestEnrollFailureSpendsNothing(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	_, secret, err := s.CreateToken(ctx, "", time.Hour, 1, t0)
	require.NoError(t, err)
	k := key(t)
	tiny := netip.MustParsePrefix("10.99.0.0/30") // .1 and .2 usable; .1 reserved
	_, err = enroll(t, s, secret, k, "a", tiny, []netip.Addr{gatewayA, netip.MustParseAddr("10.99.0.2")}, t0)
	require.ErrorIs(t, err, ErrPoolExhausted)
	// The token survived the failed enrollment.
	p, err := enroll(t, s, secret, k, "a", pool, []netip.Addr{gatewayA}, t0)
	require.NoError(t, err)
	// The same key can't enroll twice while live.
	_, secret2, _ := s.CreateToken(ctx, "", time.Hour, 1, t0)
	_, err = enroll(t, s, secret2, k, "again", pool, nil, t0)
	require.ErrorIs(t, err, ErrKeyEnrolled)
	// Revoking frees the key; the address waits out its quarantine.
	rp, err := s.Revoke(ctx, p.ID, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, rp.Revoked)
	p2, err := enroll(t, s, secret2, k, "again", pool, []netip.Addr{gatewayA}, t0.Add(2*time.Minute))
	require.NoError(t, err)
	assert.NotEqual(t, p.Address, p2.Address, "a revoked peer's address is quarantined")
	_, err = s.Revoke(ctx, 999, t0)
	assert.ErrorIs(t, err, ErrPeerUnknown)
	_, err = s.Revoke(ctx, p.ID, t0.Add(time.Hour))
	require.NoError(t, err, "revoking twice is fine")
}

func TestConcurrentEnrollmentGetsDistinctAddresses(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	const n = 40
	_, secret, err := s.CreateToken(ctx, "batch", time.Hour, n, t0)
	require.NoError(t, err)
	small := netip.MustParsePrefix("10.99.0.0/26") // 62 usable, .1 reserved: 61
	var wg sync.WaitGroup
	addrs := make(chan netip.Addr, n+10)
	errs := make(chan error, n+10)
	for range n + 10 { // 10 more than the token allows
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := enroll(t, s, secret, key(t), "x", small, []netip.Addr{gatewayA}, t0)
			if err != nil {
				errs <- err
				return
			}
			addrs <- p.Address
		}()
	}
	wg.Wait()
	close(addrs)
	close(errs)
	seen := map[netip.Addr]bool{}
	for a := range addrs {
		assert.False(t, seen[a], "address %s handed out twice", a)
		assert.True(t, small.Contains(a))
		assert.NotEqual(t, gatewayA, a)
		seen[a] = true
	}
	assert.Len(t, seen, n, "exactly the token's uses succeed")
	for err := range errs {
		assert.ErrorIs(t, err, ErrTokenUsedUp)
	}
}

func TestPoolExhaustion(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	_, secret, _ := s.CreateToken(ctx, "", time.Hour, 10, t0)
	p29 := netip.MustParsePrefix("10.99.0.0/29") // .1-.6 usable, .1 reserved: 5
	for i := range 5 {
		_, err := enroll(t, s, secret, key(t), "x", p29, []netip.Addr{gatewayA}, t0)
		require.NoError(t, err, "peer %d", i)
	}
	_, err := enroll(t, s, secret, key(t), "x", p29, []netip.Addr{gatewayA}, t0)
	assert.ErrorIs(t, err, ErrPoolExhausted)
	// IPv6 pools work too.
	p6, err := enroll(t, s, secret, key(t), "v6", netip.MustParsePrefix("fd00:99::/120"), nil, t0)
	require.NoError(t, err)
	assert.Equal(t, "fd00:99::1", p6.Address.String())
}

func TestStoreRoundTripAndPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "peers.db")
	ctx := context.Background()
	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	_, secret, _ := s.CreateToken(ctx, "", time.Hour, 1, t0)
	k := key(t)
	p, err := enroll(t, s, secret, k, "alice's laptop", pool, []netip.Addr{gatewayA}, t0)
	require.NoError(t, err)
	require.NoError(t, s.Seen(ctx, p.ID, t0.Add(5*time.Minute)))
	require.NoError(t, s.Seen(ctx, p.ID, t0.Add(time.Minute)), "an older handshake doesn't move last_seen back")
	require.NoError(t, s.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	s, err = OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	got, err := s.Peer(ctx, p.ID)
	require.NoError(t, err)
	assert.Equal(t, k, got.PublicKey)
	assert.Equal(t, p.Address, got.Address)
	assert.Equal(t, "alice's laptop", got.Label)
	assert.Equal(t, t0, got.Created)
	assert.Equal(t, t0.Add(5*time.Minute), got.LastSeen)
	all, err := s.Peers(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 1)
}

// TestRevokedAddressQuarantine: the probe saw a peer enrolled right after
// a revocation get the revoked peer's address, and with it segments of
// that peer's open download. Freed addresses now wait out a quarantine
// and are reused least recently released first.
func TestRevokedAddressQuarantine(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	_, secret, _ := s.CreateToken(ctx, "", time.Hour, 20, t0)
	p29 := netip.MustParsePrefix("10.99.0.0/29") // .2-.6 usable: 5
	var ps []Peer
	for range 5 {
		p, err := enroll(t, s, secret, key(t), "x", p29, []netip.Addr{gatewayA}, t0)
		require.NoError(t, err)
		ps = append(ps, p)
	}
	// Revoke .4 first, then .2.
	_, err := s.Revoke(ctx, ps[2].ID, t0.Add(time.Minute))
	require.NoError(t, err)
	_, err = s.Revoke(ctx, ps[0].ID, t0.Add(2*time.Minute))
	require.NoError(t, err)

	// Right after: both are quarantined, so the pool is exhausted, and
	// the error says why.
	_, err = enroll(t, s, secret, key(t), "new", p29, []netip.Addr{gatewayA}, t0.Add(3*time.Minute))
	require.ErrorIs(t, err, ErrPoolExhausted)
	assert.Contains(t, err.Error(), "quarantine")

	// After the quarantine, the one released longest ago comes first,
	// though it is not the lowest.
	after := t0.Add(2*time.Minute + DefaultQuarantine + time.Second)
	p, err := enroll(t, s, secret, key(t), "new", p29, []netip.Addr{gatewayA}, after)
	require.NoError(t, err)
	assert.Equal(t, ps[2].Address, p.Address, "least recently released first")
	p, err = enroll(t, s, secret, key(t), "new2", p29, []netip.Addr{gatewayA}, after)
	require.NoError(t, err)
	assert.Equal(t, ps[0].Address, p.Address)

	// A never-used address beats any released one.
	_, secret2, _ := s.CreateToken(ctx, "", time.Hour, 5, t0)
	big := netip.MustParsePrefix("10.99.0.0/28")
	_, err = s.Revoke(ctx, p.ID, after)
	require.NoError(t, err)
	later := after.Add(DefaultQuarantine + time.Second)
	p, err = enroll(t, s, secret2, key(t), "fresh", big, []netip.Addr{gatewayA}, later)
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.7", p.Address.String(), "the lowest never-used address")

	// A negative quarantine turns it off.
	_, err = s.Revoke(ctx, p.ID, later)
	require.NoError(t, err)
	en2, err := s.Enroll(ctx, EnrollRequest{Secret: secret2, Key: key(t), Pool: netip.MustParsePrefix("10.99.0.0/29"), Reserved: []netip.Addr{gatewayA}, Quarantine: -1, Now: later})
	p2 := en2.Peer
	require.NoError(t, err)
	assert.Equal(t, ps[0].Address.String(), p2.Address.String(), "without quarantine the oldest release is reused at once")
}

// TestEnrollRetryIsIdempotent: a crash between commit and answer used to
// leave the client with 409 and the token's use spent.
func TestEnrollRetryIsIdempotent(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	_, secret, _ := s.CreateToken(ctx, "", time.Hour, 1, t0)
	k := key(t)
	req := EnrollRequest{Secret: secret, Key: k, Label: "a", Pool: pool, Reserved: []netip.Addr{gatewayA}, Now: t0}
	first, err := s.Enroll(ctx, req)
	require.NoError(t, err)
	assert.False(t, first.Replayed)
	again, err := s.Enroll(ctx, req)
	require.NoError(t, err, "a retry with the same key and token succeeds although the token is used up")
	assert.True(t, again.Replayed)
	assert.Equal(t, first.Peer, again.Peer)
	// The retry's credential replaces the first, which dies.
	assert.NotEqual(t, first.Credential, again.Credential)
	_, err = s.Device(ctx, first.Credential)
	assert.ErrorIs(t, err, ErrCredentialUnknown, "the replaced credential")
	d, err := s.Device(ctx, again.Credential)
	require.NoError(t, err)
	assert.Equal(t, first.Peer.ID, d.ID)
	// Another token for the same key is still a conflict.
	_, secret2, _ := s.CreateToken(ctx, "", time.Hour, 1, t0)
	_, err = s.Enroll(ctx, EnrollRequest{Secret: secret2, Key: k, Pool: pool, Now: t0})
	assert.ErrorIs(t, err, ErrKeyEnrolled)
	// A wrong secret with a known ID replays nothing, and rotates nothing.
	bad := secret[:len(secret)-1] + map[bool]string{true: "A", false: "B"}[secret[len(secret)-1] != 'A']
	_, err = s.Enroll(ctx, EnrollRequest{Secret: bad, Key: k, Pool: pool, Now: t0})
	assert.ErrorIs(t, err, ErrTokenUnknown)
	_, err = s.Device(ctx, again.Credential)
	require.NoError(t, err, "a refused enrollment leaves the credential alone")
	// After revocation the key is no longer enrolled: no replay.
	_, err = s.Revoke(ctx, first.Peer.ID, t0)
	require.NoError(t, err)
	_, err = s.Enroll(ctx, req)
	assert.ErrorIs(t, err, ErrTokenUsedUp)
}

// TestDeviceCredential: enrollment gives a credential the store keeps
// only a hash of; it names its peer until the peer is revoked, and then
// says so; anything else is unknown.
func TestDeviceCredential(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSQLite(context.Background(), filepath.Join(dir, "peers.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	_, secret, _ := s.CreateToken(ctx, "", time.Hour, 2, t0)
	a, err := s.Enroll(ctx, EnrollRequest{Secret: secret, Key: key(t), Label: "a", Pool: pool, Reserved: []netip.Addr{gatewayA}, Now: t0})
	require.NoError(t, err)
	b, err := s.Enroll(ctx, EnrollRequest{Secret: secret, Key: key(t), Label: "b", Pool: pool, Reserved: []netip.Addr{gatewayA}, Now: t0})
	require.NoError(t, err)
	assert.Regexp(t, `^ttdc_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{32}$`, a.Credential)
	assert.NotEqual(t, a.Credential, b.Credential)
	pa, err := s.Device(ctx, a.Credential)
	require.NoError(t, err)
	assert.Equal(t, a.Peer, pa)
	pb, err := s.Device(ctx, b.Credential)
	require.NoError(t, err)
	assert.Equal(t, b.Peer.ID, pb.ID)

	// Only the hash is stored: the secret part is in no file of the
	// database (its write-ahead log included).
	files, err := filepath.Glob(filepath.Join(dir, "peers.db*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NotContains(t, string(b), a.Credential[len("ttdc_")+9:], f)
	}

	id := a.Credential[len("ttdc_") : len("ttdc_")+8]
	flip := func(c string) string {
		last := c[len(c)-1]
		return c[:len(c)-1] + map[bool]string{true: "A", false: "B"}[last != 'A']
	}
	for _, bad := range []string{"", "ttdc_", "Bearer " + a.Credential, a.Credential + "x", a.Credential[1:], flip(a.Credential),
		"ttdc_" + id + "_" + strings.Repeat("A", 32), "tten_" + a.Credential[5:], " " + a.Credential} {
		_, err := s.Device(ctx, bad)
		assert.ErrorIs(t, err, ErrCredentialUnknown, "%q", bad)
	}

	// Revocation kills the credential at once, and says since when.
	_, err = s.Revoke(ctx, a.Peer.ID, t0.Add(time.Minute))
	require.NoError(t, err)
	rp, err := s.Device(ctx, a.Credential)
	require.ErrorIs(t, err, ErrPeerRevoked)
	assert.Equal(t, a.Peer.ID, rp.ID)
	assert.Equal(t, t0.Add(time.Minute), rp.RevokedAt)
	_, err = s.Device(ctx, b.Credential)
	assert.NoError(t, err, "the other device's credential lives on")
}

// TestOpenUpgradesOldSchema: a store written before token_id existed
// opens, keeps its peers, and enrolls.
func TestOpenUpgradesOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE tokens (id TEXT PRIMARY KEY, hash BLOB NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, uses_left INTEGER NOT NULL CHECK (uses_left >= 0));
CREATE TABLE peers (id INTEGER PRIMARY KEY AUTOINCREMENT, public_key BLOB NOT NULL, address TEXT NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL, last_seen INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER NOT NULL DEFAULT 0);
INSERT INTO peers(public_key, address, label, created) VALUES (zeroblob(32), '10.99.0.2', 'old', 1);`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	s, err := OpenSQLite(context.Background(), path)
	require.NoError(t, err)
	defer s.Close()
	ps, err := s.Peers(context.Background())
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, "old", ps[0].Label)
	_, secret, _ := s.CreateToken(context.Background(), "", time.Hour, 1, t0)
	en, err := s.Enroll(context.Background(), EnrollRequest{Secret: secret, Key: key(t), Label: "new", Pool: pool, Reserved: []netip.Addr{gatewayA}, Now: t0})
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.3", en.Peer.Address.String())
	d, err := s.Device(context.Background(), en.Credential)
	require.NoError(t, err, "credentials work in an upgraded store")
	assert.Equal(t, en.Peer.ID, d.ID)
	s.Close()
	// Opening again (the columns and the index exist now) changes nothing.
	s, err = OpenSQLite(context.Background(), path)
	require.NoError(t, err)
	_, err = s.Device(context.Background(), en.Credential)
	require.NoError(t, err)
}

package peers

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
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

	p1, err := s.Enroll(ctx, secret, key(t), "alice", pool, []netip.Addr{gatewayA}, t0)
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.2", p1.Address.String(), "the gateway's own address is reserved")
	p2, err := s.Enroll(ctx, secret, key(t), "bob", pool, []netip.Addr{gatewayA}, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.3", p2.Address.String())
	_, err = s.Enroll(ctx, secret, key(t), "carol", pool, nil, t0.Add(2*time.Minute))
	assert.ErrorIs(t, err, ErrTokenUsedUp)

	_, secret2, err := s.CreateToken(ctx, "", time.Hour, 1, t0)
	require.NoError(t, err)
	_, err = s.Enroll(ctx, secret2, key(t), "late", pool, nil, t0.Add(time.Hour))
	assert.ErrorIs(t, err, ErrTokenExpired, "a token expires at its TTL exactly")

	for _, bad := range []string{"", "tten_", "nonsense", secret2[:len(secret2)-1] + "x", "tten_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAA"} {
		_, err = s.Enroll(ctx, bad, key(t), "x", pool, nil, t0)
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
	_, err = s.Enroll(ctx, secret, k, "a", tiny, []netip.Addr{gatewayA, netip.MustParseAddr("10.99.0.2")}, t0)
	require.ErrorIs(t, err, ErrPoolExhausted)
	// The token survived the failed enrollment.
	p, err := s.Enroll(ctx, secret, k, "a", pool, []netip.Addr{gatewayA}, t0)
	require.NoError(t, err)
	// The same key can't enroll twice while live.
	_, secret2, _ := s.CreateToken(ctx, "", time.Hour, 1, t0)
	_, err = s.Enroll(ctx, secret2, k, "again", pool, nil, t0)
	require.ErrorIs(t, err, ErrKeyEnrolled)
	// Revoking frees the key and the address.
	rp, err := s.Revoke(ctx, p.ID, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, rp.Revoked)
	p2, err := s.Enroll(ctx, secret2, k, "again", pool, []netip.Addr{gatewayA}, t0)
	require.NoError(t, err)
	assert.Equal(t, p.Address, p2.Address, "a revoked peer's address is free again")
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
			p, err := s.Enroll(ctx, secret, key(t), "x", small, []netip.Addr{gatewayA}, t0)
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
		_, err := s.Enroll(ctx, secret, key(t), "x", p29, []netip.Addr{gatewayA}, t0)
		require.NoError(t, err, "peer %d", i)
	}
	_, err := s.Enroll(ctx, secret, key(t), "x", p29, []netip.Addr{gatewayA}, t0)
	assert.ErrorIs(t, err, ErrPoolExhausted)
	// IPv6 pools work too.
	p6, err := s.Enroll(ctx, secret, key(t), "v6", netip.MustParsePrefix("fd00:99::/120"), nil, t0)
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
	p, err := s.Enroll(ctx, secret, k, "alice's laptop", pool, []netip.Addr{gatewayA}, t0)
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

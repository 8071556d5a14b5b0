package peers

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// schema is the store's tables. Addresses are unique among live peers
// only, so a revoked peer's address can be handed out again. A peer's
// device credential is its ID (cred_id, to find the row) and the SHA-256
// of the whole credential (cred_hash); migrate indexes cred_id, since a
// database from before has the column only once migrate has added it.
const schema = `
CREATE TABLE IF NOT EXISTS tokens (
	id        TEXT PRIMARY KEY,
	hash      BLOB NOT NULL,
	label     TEXT NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	uses_left INTEGER NOT NULL CHECK (uses_left >= 0)
);
CREATE TABLE IF NOT EXISTS peers (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	public_key BLOB NOT NULL,
	address    TEXT NOT NULL,
	label      TEXT NOT NULL,
	created    INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0,
	token_id   TEXT NOT NULL DEFAULT '',
	cred_id    TEXT NOT NULL DEFAULT '',
	cred_hash  BLOB NOT NULL DEFAULT x''
);
CREATE UNIQUE INDEX IF NOT EXISTS peers_live_address ON peers(address) WHERE revoked_at = 0;
CREATE UNIQUE INDEX IF NOT EXISTS peers_live_key ON peers(public_key) WHERE revoked_at = 0;
`

// SQLite is the embedded Store.
type SQLite struct {
	db *sql.DB
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the store at path, with mode 0600
// because it names every employee's device. ":memory:" is for tests.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
		f.Close()
	}
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	// One connection: SQLite serializes writers anyway, and one
	// connection makes every transaction see the last one's writes
	// (and keeps a :memory: database a single database).
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("peers: creating the schema in %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("peers: upgrading the schema in %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// migrate brings a database written by an earlier version up to schema:
// peers gained token_id (for idempotent enrollment), then cred_id and
// cred_hash (device credentials; a peer enrolled before has none until
// its device enrolls again).
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('peers')`)
	if err != nil {
		return err
	}
	has := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		has[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range []struct{ name, def string }{
		{"token_id", `TEXT NOT NULL DEFAULT ''`},
		{"cred_id", `TEXT NOT NULL DEFAULT ''`},
		{"cred_hash", `BLOB NOT NULL DEFAULT x''`},
	} {
		if !has[c.name] {
			if _, err := db.ExecContext(ctx, `ALTER TABLE peers ADD COLUMN `+c.name+` `+c.def); err != nil {
				return err
			}
		}
	}
	_, err = db.ExecContext(ctx, `CREATE UNIQUE INDEX IF NOT EXISTS peers_cred_id ON peers(cred_id) WHERE cred_id != ''`)
	return err
}

func (s *SQLite) Close() error { return s.db.Close() }

// Ping checks the database answers.
func (s *SQLite) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	return nil
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (s *SQLite) CreateToken(ctx context.Context, label string, ttl time.Duration, uses int, now time.Time) (Token, string, error) {
	if ttl <= 0 {
		return Token{}, "", errors.New("peers: a token needs a positive TTL")
	}
	if uses < 1 {
		return Token{}, "", errors.New("peers: a token needs at least one use")
	}
	id, secret, err := newTokenSecret()
	if err != nil {
		return Token{}, "", err
	}
	_, h, _ := parseTokenSecret(secret)
	t := Token{ID: id, Label: label, Created: now.UTC(), Expires: now.Add(ttl).UTC(), UsesLeft: uses, hash: h}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO tokens(id, hash, label, created, expires, uses_left) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, h[:], t.Label, unix(t.Created), unix(t.Expires), t.UsesLeft); err != nil {
		return Token{}, "", fmt.Errorf("peers: storing a token: %w", err)
	}
	return t, secret, nil
}

func (s *SQLite) Enroll(ctx context.Context, req EnrollRequest) (Enrolled, error) {
	id, h, err := parseTokenSecret(req.Secret)
	if err != nil {
		return Enrolled{}, err
	}
	if req.Key.IsZero() {
		return Enrolled{}, errors.New("peers: an all-zero public key")
	}
	cred, credID, credHash, err := newCredential()
	if err != nil {
		return Enrolled{}, err
	}
	quarantine := req.Quarantine
	if quarantine == 0 {
		quarantine = DefaultQuarantine
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	defer tx.Rollback()
	var stored []byte
	var expires int64
	var uses int
	err = tx.QueryRowContext(ctx, `SELECT hash, expires, uses_left FROM tokens WHERE id = ?`, id).Scan(&stored, &expires, &uses)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(stored, h[:]) != 1) {
		return Enrolled{}, ErrTokenUnknown
	}
	if err != nil {
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	// A retry of an enrollment that committed: the same key with the
	// same token gets its peer back, whatever the token has left.
	existing, err := scanPeer(tx.QueryRowContext(ctx, `SELECT `+peerColumns+` FROM peers WHERE public_key = ? AND revoked_at = 0`, req.Key[:]))
	switch {
	case err == nil && existing.TokenID == id:
		// A new credential: the first one's answer may never have
		// arrived, and only its hash was kept. The first one dies here.
		if _, err := tx.ExecContext(ctx, `UPDATE peers SET cred_id = ?, cred_hash = ? WHERE id = ?`, credID, credHash[:], existing.ID); err != nil {
			return Enrolled{}, fmt.Errorf("peers: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return Enrolled{}, fmt.Errorf("peers: %w", err)
		}
		return Enrolled{Peer: existing, Credential: cred, Replayed: true}, nil
	case err == nil:
		return Enrolled{}, ErrKeyEnrolled
	case !errors.Is(err, sql.ErrNoRows):
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	switch {
	case req.Now.UnixNano() >= expires:
		return Enrolled{}, ErrTokenExpired
	case uses <= 0:
		return Enrolled{}, ErrTokenUsedUp
	}
	live, released, err := addressUse(ctx, tx)
	if err != nil {
		return Enrolled{}, err
	}
	quarantineEnd := req.Now.Add(-quarantine)
	if quarantine < 0 {
		quarantineEnd = req.Now.Add(time.Nanosecond)
	}
	addr, err := pickAddress(req.Pool, live, released, req.Reserved, quarantineEnd)
	if err != nil {
		return Enrolled{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?`, id); err != nil {
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	p := Peer{PublicKey: req.Key, Address: addr, Label: req.Label, Created: req.Now.UTC(), TokenID: id}
	res, err := tx.ExecContext(ctx, `INSERT INTO peers(public_key, address, label, created, token_id, cred_id, cred_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		req.Key[:], addr.String(), req.Label, unix(p.Created), id, credID, credHash[:])
	if err != nil {
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	if p.ID, err = res.LastInsertId(); err != nil {
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Enrolled{}, fmt.Errorf("peers: %w", err)
	}
	return Enrolled{Peer: p, Credential: cred}, nil
}

// addressUse reads which addresses live peers hold, and when each other
// address that was ever handed out was last released.
func addressUse(ctx context.Context, tx *sql.Tx) (live map[netip.Addr]bool, released map[netip.Addr]time.Time, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT address, MAX(revoked_at = 0), MAX(revoked_at) FROM peers GROUP BY address`)
	if err != nil {
		return nil, nil, fmt.Errorf("peers: %w", err)
	}
	defer rows.Close()
	live, released = map[netip.Addr]bool{}, map[netip.Addr]time.Time{}
	for rows.Next() {
		var a string
		var anyLive bool
		var lastRevoked int64
		if err := rows.Scan(&a, &anyLive, &lastRevoked); err != nil {
			return nil, nil, fmt.Errorf("peers: %w", err)
		}
		ad, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		if anyLive {
			live[ad] = true
		} else {
			released[ad] = fromUnix(lastRevoked)
		}
	}
	return live, released, rows.Err()
}

const peerColumns = `id, public_key, address, label, created, last_seen, revoked_at, token_id`

// scanPeer reads peerColumns, then into extra whatever columns follow.
func scanPeer(sc interface{ Scan(...any) error }, extra ...any) (Peer, error) {
	var p Peer
	var key []byte
	var addr string
	var created, seen, revoked int64
	if err := sc.Scan(append([]any{&p.ID, &key, &addr, &p.Label, &created, &seen, &revoked, &p.TokenID}, extra...)...); err != nil {
		return Peer{}, err
	}
	if len(key) != len(p.PublicKey) {
		return Peer{}, fmt.Errorf("peers: peer %d has a %d-byte key", p.ID, len(key))
	}
	copy(p.PublicKey[:], key)
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return Peer{}, fmt.Errorf("peers: peer %d: %w", p.ID, err)
	}
	p.Address, p.Created, p.LastSeen, p.RevokedAt = a, fromUnix(created), fromUnix(seen), fromUnix(revoked)
	p.Revoked = revoked != 0
	return p, nil
}

func (s *SQLite) Device(ctx context.Context, credential string) (Peer, error) {
	id, h, err := parseCredential(credential)
	if err != nil {
		return Peer{}, err
	}
	var stored []byte
	p, err := scanPeer(s.db.QueryRowContext(ctx, `SELECT `+peerColumns+`, cred_hash FROM peers WHERE cred_id = ?`, id), &stored)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && subtle.ConstantTimeCompare(stored, h[:]) != 1) {
		return Peer{}, ErrCredentialUnknown
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peers: %w", err)
	}
	if p.Revoked {
		return p, ErrPeerRevoked
	}
	return p, nil
}

func (s *SQLite) Peers(ctx context.Context) ([]Peer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+peerColumns+` FROM peers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	defer rows.Close()
	var out []Peer
	for rows.Next() {
		p, err := scanPeer(rows)
		if err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *SQLite) Peer(ctx context.Context, id int64) (Peer, error) {
	p, err := scanPeer(s.db.QueryRowContext(ctx, `SELECT `+peerColumns+` FROM peers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Peer{}, ErrPeerUnknown
	}
	return p, err
}

func (s *SQLite) Revoke(ctx context.Context, id int64, now time.Time) (Peer, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE peers SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, unix(now), id)
	if err != nil {
		return Peer{}, fmt.Errorf("peers: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.Peer(ctx, id); err != nil {
			return Peer{}, err
		}
		// Already revoked: revoking is idempotent.
	}
	return s.Peer(ctx, id)
}

func (s *SQLite) Seen(ctx context.Context, id int64, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE peers SET last_seen = ? WHERE id = ? AND last_seen < ?`, unix(at), id, unix(at))
	if err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	return nil
}

func (s *SQLite) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, label, created, expires, uses_left FROM tokens ORDER BY created`)
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created, expires int64
		if err := rows.Scan(&t.ID, &t.Label, &created, &expires, &t.UsesLeft); err != nil {
			return nil, fmt.Errorf("peers: %w", err)
		}
		t.Created, t.Expires = fromUnix(created), fromUnix(expires)
		out = append(out, t)
	}
	return out, rows.Err()
}

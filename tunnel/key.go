package tunnel

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the length of a Curve25519 key in bytes.
const KeyLen = 32

// PrivateKey is a Curve25519 private key. It never prints itself: String,
// GoString and the fmt verbs all give "(private key)", and it has no
// MarshalText, so it cannot slip into JSON, YAML or a log line. The only
// ways to get its bytes out are WriteKeyFile and the wg-quick writer.
type PrivateKey struct{ k [KeyLen]byte }

// PublicKey is a Curve25519 public key. It prints as base64, like wg does.
type PublicKey [KeyLen]byte

// PresharedKey is an optional symmetric key mixed into the handshake. Like
// a private key, it never prints itself.
type PresharedKey struct{ k [KeyLen]byte }

const redacted = "(private key)"

// GeneratePrivateKey returns a new random, clamped Curve25519 private key.
func GeneratePrivateKey() (PrivateKey, error) {
	var k PrivateKey
	if _, err := rand.Read(k.k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("tunnel: generating a private key: %w", err)
	}
	clamp(&k.k)
	return k, nil
}

// GeneratePresharedKey returns a new random preshared key.
func GeneratePresharedKey() (PresharedKey, error) {
	var k PresharedKey
	if _, err := rand.Read(k.k[:]); err != nil {
		return PresharedKey{}, fmt.Errorf("tunnel: generating a preshared key: %w", err)
	}
	return k, nil
}

func clamp(k *[KeyLen]byte) {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// ParsePrivateKey decodes a base64 private key, as wg genkey prints it.
// Errors never quote the input.
func ParsePrivateKey(s string) (PrivateKey, error) {
	b, err := decodeKey(s)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("private key: %w", err)
	}
	var k PrivateKey
	copy(k.k[:], b)
	return k, nil
}

// ParsePublicKey decodes a base64 public key, refusing a low-order point
// (see CheckPublicKey): no real key is one.
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := decodeKey(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key: %w", err)
	}
	var k PublicKey
	copy(k[:], b)
	if err := CheckPublicKey(k); err != nil {
		return PublicKey{}, err
	}
	return k, nil
}

// lowOrderProbe is a clamped scalar: clamping makes it a multiple of the
// curve's cofactor 8, so it sends every point of small order (and only
// those) to zero.
var lowOrderProbe = [KeyLen]byte{8: 1, 31: 64}

// ErrLowOrderKey means a public key is a point of small order, such as
// all zeros: Diffie-Hellman with it yields a known value whatever the
// private key, so it can never complete a WireGuard handshake.
var ErrLowOrderKey = errors.New("public key: a point of small order (such as all zeros), which no real key is")

// CheckPublicKey reports whether k can be a peer's key: not a point of
// small order, in any of its encodings (the top bit is ignored, as
// X25519 does).
func CheckPublicKey(k PublicKey) error {
	if _, err := curve25519.X25519(lowOrderProbe[:], k[:]); err != nil {
		return ErrLowOrderKey
	}
	return nil
}

// ParsePresharedKey decodes a base64 preshared key. Errors never quote the
// input.
func ParsePresharedKey(s string) (PresharedKey, error) {
	b, err := decodeKey(s)
	if err != nil {
		return PresharedKey{}, fmt.Errorf("preshared key: %w", err)
	}
	var k PresharedKey
	copy(k.k[:], b)
	return k, nil
}

var errKeyFormat = errors.New("want 44 characters of base64 encoding 32 bytes")

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != 44 {
		return nil, fmt.Errorf("%w, got %d characters", errKeyFormat, len(s))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return nil, errKeyFormat
	}
	return b, nil
}

// Public derives the public key.
func (k PrivateKey) Public() PublicKey {
	var p PublicKey
	pub, err := curve25519.X25519(k.k[:], curve25519.Basepoint)
	if err != nil {
		// Only a low-order result fails, and the base point never gives one.
		panic(fmt.Sprintf("tunnel: deriving a public key: %v", err))
	}
	copy(p[:], pub)
	return p
}

// IsZero reports whether k is unset.
func (k PrivateKey) IsZero() bool { return k == PrivateKey{} }

// Equal compares two private keys in constant time.
func (k PrivateKey) Equal(o PrivateKey) bool { return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1 }

func (k PrivateKey) String() string   { return redacted }
func (k PrivateKey) GoString() string { return redacted }

// Format keeps every fmt verb, %x and %v included, away from the bytes.
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// secretBase64 is for the wg-quick writer and key files only.
func (k PrivateKey) secretBase64() string { return base64.StdEncoding.EncodeToString(k.k[:]) }

// uapiHex is for wireguard-go's configuration protocol only.
func (k PrivateKey) uapiHex() string { return hex.EncodeToString(k.k[:]) }

// IsZero reports whether k is unset.
func (k PresharedKey) IsZero() bool { return k == PresharedKey{} }

func (k PresharedKey) String() string             { return "(preshared key)" }
func (k PresharedKey) GoString() string           { return "(preshared key)" }
func (k PresharedKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("(preshared key)")) }
func (k PresharedKey) secretBase64() string       { return base64.StdEncoding.EncodeToString(k.k[:]) }
func (k PresharedKey) uapiHex() string            { return hex.EncodeToString(k.k[:]) }
func (k PublicKey) String() string                { return base64.StdEncoding.EncodeToString(k[:]) }
func (k PublicKey) IsZero() bool                  { return k == PublicKey{} }
func (k PublicKey) uapiHex() string               { return hex.EncodeToString(k[:]) }
func (k PublicKey) MarshalText() ([]byte, error)  { return []byte(k.String()), nil }
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// Short is the first 8 characters of the base64 form, for logs.
func (k PublicKey) Short() string { return k.String()[:8] }

// WriteKeyFile stores k at path as base64 plus a newline, the format of
// wg genkey, with mode 0600. The write is atomic: a temporary file in the
// same directory, synced, then renamed over path, so a crash leaves either
// the old key or the new one, never half of one.
func WriteKeyFile(path string, k PrivateKey) error {
	if k.IsZero() {
		return errors.New("tunnel: refusing to write an empty private key")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tunnel: key directory: %w", err)
	}
	return writeFileAtomic(path, []byte(k.secretBase64()+"\n"), 0o600)
}

// ReadKeyFile loads a private key written by WriteKeyFile or wg genkey. It
// refuses a file that group or others can read, as ssh does, because a
// leaked key must be rotated, not merely noticed.
func ReadKeyFile(path string) (PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("tunnel: key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return PrivateKey{}, fmt.Errorf("tunnel: key file %s has mode %04o; it must be 0600: run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("tunnel: key file: %w", err)
	}
	k, err := ParsePrivateKey(string(b))
	if err != nil {
		return PrivateKey{}, fmt.Errorf("tunnel: key file %s: %w", path, err)
	}
	return k, nil
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tunnel: writing %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("tunnel: writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("tunnel: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tunnel: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tunnel: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tunnel: writing %s: %w", path, err)
	}
	ok = true
	return nil
}

package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherwfh/tether/tunnel"
)

// minTokenLen is the shortest bearer token a gateway accepts from its
// token files: 16 characters, so a placeholder or a typo is refused.
const minTokenLen = 16

// Secrets are a gateway's secret files in one directory, as init writes
// them, and what of them its clients need: the key's public half, the
// tokens and the certificate's pin.
type Secrets struct {
	// KeyFile is the WireGuard private key (gateway.key, 0600).
	KeyFile string
	// AdminTokenFile and MetricsTokenFile hold the bearer tokens of the
	// admin API and of /metrics (admin.token, metrics.token, 0600).
	AdminTokenFile, MetricsTokenFile string
	// CertFile and CertKeyFile are the API's self-signed certificate and
	// its key (api.crt, api.key 0600).
	CertFile, CertKeyFile string

	// PublicKey is KeyFile's public half; AdminToken and MetricsToken the
	// tokens; Pin the certificate's. Set by WriteSecrets only.
	PublicKey                tunnel.PublicKey
	AdminToken, MetricsToken string
	Pin                      string
}

// SecretFiles names the files WriteSecrets writes in dir, without their
// contents: to remove a previous run's (the dev stack), or to check none
// is there (init).
func SecretFiles(dir string) Secrets {
	return Secrets{KeyFile: filepath.Join(dir, "gateway.key"),
		AdminTokenFile: filepath.Join(dir, "admin.token"), MetricsTokenFile: filepath.Join(dir, "metrics.token"),
		CertFile: filepath.Join(dir, "api.crt"), CertKeyFile: filepath.Join(dir, "api.key")}
}

// Paths are the files, in the order WriteSecrets writes them.
func (s Secrets) Paths() []string {
	return []string{s.KeyFile, s.AdminTokenFile, s.MetricsTokenFile, s.CertFile, s.CertKeyFile}
}

// Apply points cfg at the secrets: the admin and metrics token files, the
// API's certificate (so it serves HTTPS) and, when cfg has a WireGuard
// endpoint, its key file.
func (s Secrets) Apply(cfg *Config) {
	cfg.API.AdminTokenFile, cfg.API.MetricsTokenFile = s.AdminTokenFile, s.MetricsTokenFile
	cfg.API.TLSCertFile, cfg.API.TLSKeyFile = s.CertFile, s.CertKeyFile
	if cfg.WireGuard != nil {
		cfg.WireGuard.KeyFile = s.KeyFile
	}
}

// WriteSecrets writes a gateway's secrets into dir, which must exist: a
// fresh WireGuard key, random admin and metrics tokens, and a self-signed
// certificate for hosts (names or IP addresses) valid from now; every
// secret 0600. It refuses to replace a file. init, the dev stack, the
// bench and the tests' gateways all start from it.
func WriteSecrets(dir string, hosts []string, now time.Time) (Secrets, error) {
	s := SecretFiles(dir)
	k, err := tunnel.GeneratePrivateKey()
	if err != nil {
		return Secrets{}, err
	}
	if err := tunnel.WriteKeyFile(s.KeyFile, k); err != nil {
		return Secrets{}, err
	}
	s.PublicKey = k.Public()
	if s.AdminToken, err = writeNewToken(s.AdminTokenFile); err != nil {
		return Secrets{}, err
	}
	if s.MetricsToken, err = writeNewToken(s.MetricsTokenFile); err != nil {
		return Secrets{}, err
	}
	if s.Pin, err = GenerateCert(s.CertFile, s.CertKeyFile, hosts, now); err != nil {
		return Secrets{}, err
	}
	return s, nil
}

// writeNewToken writes a fresh random bearer token to path (0600),
// refusing to replace a file, and returns it.
func writeNewToken(path string) (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	tok := hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	_, err = fmt.Fprintln(f, tok)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	return tok, nil
}

// readToken reads a bearer token from the file that setting names; an
// empty path is no token.
func readToken(setting, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s has mode %04o; it must be 0600", setting, path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", setting, err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < minTokenLen {
		return "", fmt.Errorf("%s %s: the token is shorter than %d characters", setting, path, minTokenLen)
	}
	return t, nil
}

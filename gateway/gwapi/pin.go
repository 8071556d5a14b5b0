package gwapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// pinPrefix starts a certificate pin: "sha256:" and 64 hex digits, the
// SHA-256 of the certificate's DER bytes (what `openssl x509 -fingerprint
// -sha256` prints, without the colons).
const pinPrefix = "sha256:"

// Fingerprint is the pin of a DER-encoded certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return pinPrefix + hex.EncodeToString(sum[:])
}

// ParsePin checks a pin and returns it in canonical form. Colons and
// upper case, as openssl prints them, are accepted.
func ParsePin(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), pinPrefix)
	if !ok {
		return "", fmt.Errorf("certificate pin %q: want sha256:<64 hex digits>", s)
	}
	h = strings.ReplaceAll(h, ":", "")
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("certificate pin %q: want sha256:<64 hex digits>", s)
	}
	return pinPrefix + h, nil
}

// ErrPinMismatch means the server's certificate is not the pinned one:
// someone in the path, or a gateway whose certificate changed.
var ErrPinMismatch = errors.New("the gateway's certificate does not match the pinned fingerprint")

// PinnedTLS is a TLS client config that trusts exactly the certificate
// with this pin, as with a self-signed gateway certificate; names and
// expiry are not checked, the pin is the trust. An empty pin means the
// system's roots and the usual checks, for a certificate a public or
// company CA issued.
func PinnedTLS(pin string) (*tls.Config, error) {
	if pin == "" {
		return &tls.Config{MinVersion: tls.VersionTLS12}, nil
	}
	pin, err := ParsePin(pin)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection's pin check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrPinMismatch
			}
			got := Fingerprint(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare([]byte(got), []byte(pin)) != 1 {
				return fmt.Errorf("%w (it presented %s)", ErrPinMismatch, got)
			}
			return nil
		},
	}, nil
}

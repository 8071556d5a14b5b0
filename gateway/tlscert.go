package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
)

// selfSignedLifetime is how long init's certificate lasts. Clients pin
// it rather than check dates, so a long life costs nothing and spares a
// fleet's re-pinning; an admin who wants rotation brings a CA's.
const selfSignedLifetime = 10 * 365 * 24 * time.Hour

// GenerateCert writes a self-signed ECDSA P-256 certificate for hosts
// (names or IP addresses) to certFile, and its key to keyFile (0600).
// It refuses to replace either, and returns the certificate's pin.
func GenerateCert(certFile, keyFile string, hosts []string, now time.Time) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tether-gateway"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(selfSignedLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", err
	}
	if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyFile)
		return "", err
	}
	return gwapi.Fingerprint(der), nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// loadCert reads the API's certificate and key, checking the key file's
// mode as for every secret, and returns them with the leaf's pin.
func loadCert(certFile, keyFile string) (tls.Certificate, string, error) {
	st, err := os.Stat(keyFile)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("api.tls_key_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, "", fmt.Errorf("api.tls_key_file %s has mode %04o; it must be 0600", keyFile, st.Mode().Perm())
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("api.tls_cert_file/api.tls_key_file: %w", err)
	}
	return c, gwapi.Fingerprint(c.Certificate[0]), nil
}

// CertPin reads a certificate file and returns its pin, for `tether-gateway
// fingerprint` and for the CLI, which trusts its own gateway by it.
func CertPin(certFile string) (string, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return "", fmt.Errorf("tls: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fmt.Errorf("tls: %s holds no PEM certificate", certFile)
	}
	return gwapi.Fingerprint(blk.Bytes), nil
}

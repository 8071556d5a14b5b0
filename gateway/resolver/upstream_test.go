package resolver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startDoT runs a DNS-over-TLS server with a fresh self-signed certificate
// for "dot.test" and returns its address and the CA file.
func startDoT(t *testing.T, h dns.HandlerFunc) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dot.test"}, DNSNames: []string{"dot.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	require.NoError(t, err)
	s := &dns.Server{Listener: ln, Net: "tcp-tls", Handler: h}
	go func() { _ = s.ActivateAndServe() }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String(), ca
}

func TestDoTUpstream(t *testing.T) {
	var got atomic.Int64
	addr, ca := startDoT(t, func(w dns.ResponseWriter, q *dns.Msg) { got.Add(1); answerA(w, q) })
	tr := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: addr, Proto: "tls", ServerName: "dot.test", CAFile: ca}}})
	resp := tr.ask(t, "secure.example", dns.TypeA, true)
	require.Len(t, resp.Answer, 1)
	assert.EqualValues(t, 1, got.Load())

	// The wrong name fails verification: no answer, SERVFAIL.
	bad := newTestResolver(t, Config{Upstreams: []UpstreamConfig{{Addr: addr, Proto: "tls", ServerName: "other.test", CAFile: ca}}})
	resp = bad.ask(t, "secure.example", dns.TypeA, true)
	assert.Equal(t, dns.RcodeServerFailure, resp.Rcode)
	assert.EqualValues(t, 1, got.Load(), "no query sent over an unverified connection")
}

// deadUpstream is a UDP address nobody answers on.
func deadUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func TestStrategies(t *testing.T) {
	for _, strategy := range []Strategy{StrategyFirst, StrategyParallelBest} {
		t.Run(string(strategy), func(t *testing.T) {
			up := startUpstream(t, answerA)
			tr := newTestResolver(t, Config{Strategy: strategy, Cache: CacheConfig{MaxEntries: 1},
				Upstreams: []UpstreamConfig{{Addr: deadUpstream(t)}, {Addr: up.addr}}})
			for i := range 5 {
				resp := tr.ask(t, "n"+string(rune('a'+i))+".example", dns.TypeA, true)
				require.Len(t, resp.Answer, 1, "the live upstream answers")
			}
			assert.EqualValues(t, 5, up.queries.Load())
		})
	}
}

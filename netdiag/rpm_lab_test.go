package netdiag_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/netdiagtest"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// selfSigned is a certificate for addr and a client config that trusts
// only it, as a gateway's pinned certificate is trusted.
func selfSigned(tb testing.TB, addr netip.Addr) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{addr.AsSlice()}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"h2", "http/1.1"}},
		&tls.Config{RootCAs: pool}
}

// startMeasurementTLS is startMeasurement over HTTPS, as every real
// gateway serves it.
func startMeasurementTLS(tb testing.TB, l *netlab.Lab) (string, *tls.Config) {
	tb.Helper()
	srvTLS, cliTLS := selfSigned(tb, netlab.GatewayAddr)
	s := netdiagtest.New(tb, netdiagtest.Options{
		Listen: func() (net.Listener, error) {
			ln, err := l.Gateway.Listen("tcp", netip.AddrPortFrom(netlab.GatewayAddr, measurePort).String())
			if err != nil {
				return nil, err
			}
			return tls.NewListener(ln, srvTLS), nil
		},
		ListenPacket: func() (net.PacketConn, error) {
			return l.Gateway.ListenPacket("udp", netip.AddrPortFrom(netlab.GatewayAddr, stamp.DefaultPort).String())
		},
	})
	return fmt.Sprintf("https://%s", s.Addr), cliTLS
}

// BenchmarkLabRPM: five full runs over HTTPS on one shaped line (60/12
// Mbit/s, 150 ms queues: the line the independent draft client
// measured at about 200 RPM) and the spread of their RPM around its
// median; the draft's probes (TCP, TLS and HTTP foreign, HTTP/2 self).
func BenchmarkLabRPM(b *testing.B) {
	netlab.SkipUnlessSupported(b)
	p := netlab.Profile{Name: "rpm_60_12", Description: "60/12 Mbit/s with 150 ms queues",
		Down: netlab.Link{Rate: 60 * netlab.Mbps, Queue: 150 * time.Millisecond},
		Up:   netlab.Link{Rate: 12 * netlab.Mbps, Queue: 150 * time.Millisecond}}
	l := netlab.New(b, p)
	server, cliTLS := startMeasurementTLS(b, l)
	for b.Loop() {
		var rpms []float64
		for run := range 5 {
			c, err := netdiag.New(netdiag.Config{Server: server, TLS: cliTLS, Netns: l.Home.Do,
				DNS: netdiag.DNSConfig{ResolvConf: l.ResolvConf(), ProbeName: netlab.WebName, TestDomain: "internet.test."}})
			require.NoError(b, err)
			rep := c.Run(context.Background(), report.ModeFull)
			require.NotNil(b, rep.Responsiveness)
			r := rep.Responsiveness
			require.Positive(b, r.SelfProbes, "self probes over h2: %+v", r)
			require.Positive(b, r.ForeignTLSMS, "the TLS term: %+v", r)
			b.Logf("run %d: RPM %d (foreign TCP %.0f, TLS %.0f, HTTP %.0f ms; self %.0f ms; %d foreign, %d self probes); %.1f/%.1f Mbit/s",
				run+1, r.RPM, r.ForeignTCPMS, r.ForeignTLSMS, r.ForeignHTTPMS, r.SelfHTTPMS, r.ForeignProbes, r.SelfProbes,
				rep.Throughput.DownloadMbps, rep.Throughput.UploadMbps)
			rpms = append(rpms, float64(r.RPM))
		}
		slices.Sort(rpms)
		med := rpms[len(rpms)/2]
		spread := max(med-rpms[0], rpms[len(rpms)-1]-med) / med * 100
		b.Logf("RESULT RPM over five runs: median %.0f, min %.0f, max %.0f: within ±%.1f%% of the median", med, rpms[0], rpms[len(rpms)-1], spread)
		b.ReportMetric(med, "rpm_median")
		b.ReportMetric(spread, "spread_pct")
	}
}

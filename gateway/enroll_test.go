package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/internal/wgprobe"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/tunnel"
)

func TestEnrollConnectRevoke(t *testing.T) {
	g := gatewaytest.New(t)
	ctx := context.Background()
	_, err := g.API.Ready(ctx)
	require.NoError(t, err, "store and WireGuard are up")
	token := g.Token(t, 2)
	a := g.Connect(t, token)
	b := g.Connect(t, token)
	assert.Equal(t, "10.99.0.2/24", a.Enrollment.Address)
	assert.Equal(t, "10.99.0.3/24", b.Enrollment.Address)
	assert.Equal(t, []string{gatewaytest.CompanyPrefix.String()}, a.Enrollment.CompanyPrefixes)
	assert.Equal(t, []string{"full", "split"}, a.Enrollment.AllowedModes)
	require.Eventually(t, func() bool { return a.Reaches(500 * time.Millisecond) }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return b.Reaches(500 * time.Millisecond) }, 10*time.Second, 10*time.Millisecond)

	list, err := g.API.Peers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Positive(t, list[0].RxBytes)
	assert.False(t, list[0].LastHandshake.IsZero())

	// Revoke A while it pings continuously; B keeps working.
	start := time.Now()
	rv, err := g.API.Revoke(ctx, a.Enrollment.PeerID)
	require.NoError(t, err)
	assert.True(t, rv.Peer.Revoked)
	cut := time.Since(start)
	assert.False(t, a.Reaches(300*time.Millisecond), "the revoked peer's next packet gets nothing")
	// The other peer keeps working (retried: on a loaded CI machine a
	// single ping through two netstacks under -race can take seconds).
	assert.Eventually(t, func() bool { return b.Reaches(time.Second) }, 10*time.Second, 10*time.Millisecond, "the other peer keeps working")
	t.Logf("RESULT revocation: removed from the live device in %.2f ms; the API call returned in %.1f ms", rv.RemovedInMS, float64(cut.Microseconds())/1000)

	admin := g.Secrets.AdminToken
	code, metrics := call(t, "GET", g.URL()+"/metrics", admin, nil)
	require.Equal(t, http.StatusOK, code)
	mb := bytes.NewBuffer(metrics)
	assert.Contains(t, mb.String(), `tether_wireguard_enrollments_total{result="ok"} 2`)
	assert.Contains(t, mb.String(), `tether_wireguard_revocations_total 1`)
	assert.Contains(t, mb.String(), `tether_wireguard_peers{state="revoked"} 1`)
	assert.Contains(t, mb.String(), `tether_wireguard_peer_rx_bytes{peer="2"}`)
	assert.Contains(t, mb.String(), `tether_forward_tcp_accepted_total 0`)
	assert.Contains(t, mb.String(), `tether_measure_bytes_down_total `)

	// Admin API without or with a wrong token.
	code, _ = call(t, "GET", g.URL()+gwapi.PathAdminPeers, "", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = call(t, "GET", g.URL()+gwapi.PathAdminPeers, "wrong-token-wrong-token", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
}

func TestEnrollBadInput(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.WireGuard.EnrollPerMinute = 20 }))
	base := g.URL()
	token := g.Token(t, 1)
	k, _ := tunnel.GeneratePrivateKey()
	pub := k.Public().String()
	for _, tc := range []struct {
		name string
		body any
		code int
		want string
	}{
		{"wrong token", gwapi.EnrollRequest{Token: "tten_AAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAA", PublicKey: pub}, 403, "unknown enrollment token"},
		{"malformed key", gwapi.EnrollRequest{Token: token, PublicKey: "not-a-key"}, 400, "public_key"},
		{"not JSON", []byte("{nope"), 400, "not an enrollment request"},
		{"oversize body", []byte(`{"label":"` + strings.Repeat("x", 8<<10) + `"}`), 413, "over"},
	} {
		code, body := call(t, "POST", base+gwapi.PathEnroll, "", tc.body)
		assert.Equal(t, tc.code, code, tc.name)
		assert.Contains(t, string(body), tc.want, tc.name)
	}
	code, _ := call(t, "POST", base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: pub})
	require.Equal(t, 200, code, "the token survived the bad attempts")
	k2, _ := tunnel.GeneratePrivateKey()
	code, body := call(t, "POST", base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: token, PublicKey: k2.Public().String()})
	assert.Equal(t, 403, code)
	assert.Contains(t, string(body), "already used")
	// A flood is rate-limited (20 a minute per address; 6 used above).
	var last int
	for range 20 {
		last, _ = call(t, "POST", base+gwapi.PathEnroll, "", gwapi.EnrollRequest{Token: "x", PublicKey: pub})
	}
	assert.Equal(t, http.StatusTooManyRequests, last)
}

// TestServicesInsideTheTunnel: a userspace client fetches the intranet
// page and resolves through the gateway's DNS, all on the tunnel address.
func TestServicesInsideTheTunnel(t *testing.T) {
	g := gatewaytest.New(t)
	c := g.Connect(t, g.Token(t, 1))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: c.Net().DialContext}}
	var page string
	require.Eventually(t, func() bool {
		resp, err := hc.Get("http://" + c.Gateway.String() + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		page = b.String()
		return resp.StatusCode == 200
	}, 10*time.Second, 50*time.Millisecond)
	assert.Contains(t, page, "Company intranet")
	resp, err := hc.Get("http://" + c.Gateway.String() + "/ip")
	require.NoError(t, err)
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	assert.Contains(t, b.String(), c.Address().String(), "the measurement service sees the tunnel address")
}

// TestDiagThroughTheTunnel runs the full line diagnosis through a
// userspace tunnel against the measurement service on the gateway's
// tunnel address: ICMP through the tunnel's own echo, STAMP on 862 and
// HTTP on 80 inside the netstack. One process pair, no root.
func TestDiagThroughTheTunnel(t *testing.T) {
	netlab.HoldCPU(t)
	g := gatewaytest.New(t)
	u := g.Connect(t, g.Token(t, 1))
	en := u.Enrollment
	c, err := netdiag.New(netdiag.Config{Server: "http://" + en.GatewayAddress, STAMPPort: 862, Dial: u.DialContext, Ping: u.Ping})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep := c.Run(ctx, report.ModeFull)
	require.Empty(t, rep.Errors)
	require.Len(t, rep.Latency.Targets, 1, "the gateway only: the host's router is not on the tunnel")
	gw := rep.Latency.Targets[0]
	assert.Equal(t, en.GatewayAddress, gw.Addr)
	assert.Equal(t, report.MethodICMP, gw.Method, "the tunnel's own echo answers")
	require.NotNil(t, rep.Throughput)
	assert.Positive(t, rep.Throughput.DownloadMbps)
	assert.Positive(t, rep.Throughput.UploadMbps)
	require.NotNil(t, rep.Responsiveness)
	assert.Positive(t, rep.Responsiveness.RPM)
	t.Logf("through the userspace tunnel: idle %.2f ms, down %.0f / up %.0f Mbit/s, RPM %d, %s",
		gw.MedianMS, rep.Throughput.DownloadMbps, rep.Throughput.UploadMbps, rep.Responsiveness.RPM, rep.Summary)

	// Without Ping, STAMP inside the netstack takes over.
	c, err = netdiag.New(netdiag.Config{Server: "http://" + en.GatewayAddress, STAMPPort: 862, Dial: u.DialContext})
	require.NoError(t, err)
	rep = c.Run(ctx, report.ModeQuick)
	require.Len(t, rep.Latency.Targets, 1)
	assert.Equal(t, report.MethodSTAMP, rep.Latency.Targets[0].Method)
}

// wgProbe sends one reachability probe over conn and waits for its answer.
func wgProbe(t *testing.T, conn net.Conn) error {
	t.Helper()
	nonce := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(wgprobe.Request(nonce)); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	got, err := wgprobe.ParseAnswer(buf[:n])
	if err != nil {
		return err
	}
	if got != nonce {
		return fmt.Errorf("answer for nonce %x", got)
	}
	return nil
}

// TestWireGuardPortAnswersReachabilityProbes: the gateway's WireGuard
// socket answers netdiag's UDP probe (so clients can tell a blocked port
// from an unenrolled key), and WireGuard keeps working beside it.
func TestWireGuardPortAnswersReachabilityProbes(t *testing.T) {
	g := gatewaytest.New(t)
	conn, err := net.Dial("udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), g.WireGuardPort()).String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, wgProbe(t, conn))
	u := g.Connect(t, g.Token(t, 1))
	require.Eventually(t, func() bool { return u.Reaches(500 * time.Millisecond) }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, wgProbe(t, conn), "probes still answered with a live peer")
}

package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gwapi"
)

// wgServer is startServer with a userspace WireGuard endpoint and the
// admin token, changed by change.
func wgServer(t *testing.T, change func(*Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	sec, err := WriteSecrets(dir, nil, time.Now())
	require.NoError(t, err)
	port := freeUDP(t)
	cfg := DefaultConfig()
	cfg.API.AdminTokenFile = sec.AdminTokenFile
	cfg.WireGuard = &WireGuardConfig{ListenPort: port, Address: netip.MustParsePrefix("10.99.0.1/24"), KeyFile: sec.KeyFile,
		Endpoint: fmt.Sprintf("127.0.0.1:%d", port), Store: filepath.Join(dir, "peers.db"), EnrollPerMinute: 20}
	if change != nil {
		change(&cfg)
	}
	s, _ := startServer(t, cfg, Options{})
	return s
}

// freeUDP is a free loopback UDP port for the WireGuard endpoint, which
// must know its port before it starts: enrollment tells clients.
func freeUDP(t *testing.T) uint16 {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// TestFullTunnelNeverReachesTheHost: a full-tunnel peer may reach the
// internet through the userspace gateway's sockets, never the gateway
// host itself. The deny list lacked ::/128, the unspecified address, a
// dial to which reaches the host's own listeners.
func TestFullTunnelNeverReachesTheHost(t *testing.T) {
	pol := forwardPolicy{pool: netip.MustParsePrefix("10.99.0.0/24"), gateway: netip.MustParseAddr("10.99.0.1"),
		company: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16")}, internet: true}
	fwd := pol.forward()
	for _, a := range []string{"::", "::1", "::ffff:127.0.0.1", "127.0.0.1", "127.1.2.3", "0.0.0.0", "0.1.2.3", "169.254.169.254", "fe80::1", "ff02::1", "224.0.0.1", "255.255.255.255", "10.99.0.1", "10.99.0.7"} {
		assert.False(t, fwd.Allowed(netip.MustParseAddr(a)), "%s is reachable through the gateway", a)
	}
	for _, a := range []string{"198.51.100.7", "2001:db8::1", "10.77.0.10"} {
		assert.True(t, fwd.Allowed(netip.MustParseAddr(a)), "%s is not reachable", a)
	}
	pol.internet = false
	fwd = pol.forward()
	assert.True(t, fwd.Allowed(netip.MustParseAddr("10.77.3.4")))
	assert.False(t, fwd.Allowed(netip.MustParseAddr("198.51.100.7")), "split-only: no internet")
}

// TestEnrollLimitGroupsIPv6: the enrollment limit was per exact address,
// so a host rotating through its /64 was never limited, and the map of
// attempts only shrank when an address came back.
func TestEnrollLimitGroupsIPv6(t *testing.T) {
	s := wgServer(t, func(c *Config) { c.WireGuard.EnrollPerMinute = 5 })
	h := s.Handler()
	try := func(remote string) int {
		req := httptest.NewRequest("POST", gwapi.PathEnroll, strings.NewReader(`{}`))
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	limited := 0
	for i := range 50 {
		if try(fmt.Sprintf("[2001:db8:1:2::%x]:40000", i+1)) == http.StatusTooManyRequests {
			limited++
		}
	}
	assert.Equal(t, 45, limited, "50 addresses of one /64 share 5 attempts a minute")
	assert.NotEqual(t, http.StatusTooManyRequests, try("[2001:db8:1:3::1]:40000"), "the next /64 is another client")
	assert.NotEqual(t, http.StatusTooManyRequests, try("192.0.2.1:40000"))
	assert.LessOrEqual(t, s.wg.enrollLimit.Len(), 3, "one bucket per client network")
}

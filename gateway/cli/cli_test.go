package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/cli"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/peers"
	"github.com/tetherwfh/tether/tunnel"
)

// run runs tether-gateway with args and returns its exit code, stdout
// and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// configOf writes the config a running gatewaytest gateway runs with, its
// API at the address it really listens on, as the CLI beside it reads it.
func configOf(t *testing.T, g *gatewaytest.Gateway) string {
	t.Helper()
	cfg := g.Config
	cfg.API.Listen = g.Server.Addr().String()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, gateway.WriteConfig(path, cfg))
	return path
}

func TestUsage(t *testing.T) {
	code, _, errb := run(t)
	assert.Equal(t, 2, code)
	assert.Contains(t, errb, "tether-gateway serve --config PATH")
	code, out, _ := run(t, "help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "tether-gateway peer list")
	code, _, errb = run(t, "nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, errb, `unknown command "nope"`)
	for _, args := range [][]string{{"dns"}, {"token"}, {"peer", "frob"}} {
		code, _, errb = run(t, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Contains(t, errb, "usage:", "%v", args)
	}
	code, _, errb = run(t, "peer", "revoke")
	assert.Equal(t, 2, code)
	assert.Contains(t, errb, "usage: tether-gateway peer revoke")
	code, _, errb = run(t, "peer", "revoke", "--config", "/nonexistent", "abc")
	assert.Equal(t, 1, code)
	assert.Contains(t, errb, `tether-gateway peer revoke: peer id "abc": not a number`)
	code, out, _ = run(t, "version")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(out, "tether-gateway "), out)
}

func TestInitThenFingerprint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "gateway.yaml")
	code, out, errb := run(t, "init", "--config", path, "--name", "hq", "--endpoint", "vpn.example.com:51820")
	require.Equal(t, 0, code, errb)
	assert.Contains(t, out, "wrote "+path)
	assert.Contains(t, out, "start the gateway with: tether-gateway serve --config "+path)
	lines := strings.Split(out, "\n")
	var pin string
	for i, l := range lines {
		if strings.Contains(l, "clients pin it") {
			pin = strings.TrimSpace(lines[i+1])
		}
	}
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, pin)
	code, out, errb = run(t, "fingerprint", "--config", path)
	require.Equal(t, 0, code, errb)
	assert.Equal(t, pin+"\n", out, "fingerprint prints the pin init printed, alone")

	code, _, errb = run(t, "init", "--config", path)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb, "tether-gateway init: ")
	assert.Contains(t, errb, "never replaces a file")
}

// syncBuffer is a bytes.Buffer that the gateway's logger writes while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeRunsUntilItsContextEnds(t *testing.T) {
	cfg := gateway.DefaultConfig()
	cfg.Name, cfg.API.Listen, cfg.Measure.STAMPListen = "served", "127.0.0.1:0", ""
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, gateway.WriteConfig(path, cfg))
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"serve", "--config", path}, cli.Env{Stdout: &out, Stderr: &errb})
	}()
	require.Eventually(t, func() bool { return strings.Contains(errb.String(), "gateway serving") }, 10*time.Second, 10*time.Millisecond, "the log goes to stderr")
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	assert.Contains(t, errb.String(), "gateway stopped")

	code, _, stderr := run(t, "serve", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "tether-gateway serve: ")
}

// TestAdminCommands: token create, peer list and peer revoke against a
// running gateway over HTTPS, trusting its certificate by the pin of the
// file in its config, as on the gateway host.
func TestAdminCommands(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithTLS())
	config := configOf(t, g)

	code, out, errb := run(t, "token", "create", "--config", config, "--uses", "2", "--label", "two laptops")
	require.Equal(t, 0, code, errb)
	secret, _, _ := strings.Cut(out, "\n")
	assert.True(t, strings.HasPrefix(secret, "tten_"), out)
	assert.Contains(t, out, "for 2 enrollment(s); shown once")
	code, out, errb = run(t, "token", "create", "--config", config, "--json", "--ttl", "1h")
	require.Equal(t, 0, code, errb)
	var tc gwapi.TokenCreated
	require.NoError(t, json.Unmarshal([]byte(out), &tc))
	assert.Equal(t, 1, tc.Uses)

	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	en, err := g.API.Enroll(context.Background(), gwapi.EnrollRequest{Token: secret, PublicKey: k.Public().String(), Label: "Zoë's laptop"})
	require.NoError(t, err)

	code, out, errb = run(t, "peer", "list", "--config", config)
	require.Equal(t, 0, code, errb)
	assert.Contains(t, out, "Zoë's laptop")
	assert.Contains(t, out, "10.99.0.2")
	assert.Contains(t, out, "active")
	assert.Contains(t, out, k.Public().String()[:8]+"…", "keys shortened as wg shows them")

	code, out, errb = run(t, "peer", "revoke", "--config", config, "1")
	require.Equal(t, 0, code, errb)
	assert.Contains(t, out, "revoked peer 1 (10.99.0.2, Zoë's laptop): removed from the live device in")
	code, out, errb = run(t, "peer", "list", "--config", config, "--json")
	require.Equal(t, 0, code, errb)
	var ps []gwapi.PeerInfo
	require.NoError(t, json.Unmarshal([]byte(out), &ps))
	require.Len(t, ps, 1)
	assert.Equal(t, en.PeerID, ps[0].ID)
	assert.True(t, ps[0].Revoked)

	code, _, errb = run(t, "peer", "revoke", "--config", config, "--json", "99")
	assert.Equal(t, 1, code)
	assert.Contains(t, errb, "tether-gateway peer revoke: revoking peer 99: the gateway said 404 Not Found: ")
}

func TestAdminCommandsNeedTheAdminAPI(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithConfig(func(c *gateway.Config) { c.API.AdminTokenFile = "" }))
	config := configOf(t, g)
	code, _, errb := run(t, "peer", "list", "--config", config)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb, "sets no api.admin_token_file, so the admin API is off")
}

// TestPeerListEscapesAHostileLabel: the API refuses labels that would
// drive a terminal, but the database may hold one (an older gateway, a
// hand edit). peer list prints it escaped, on its own row.
func TestPeerListEscapesAHostileLabel(t *testing.T) {
	g := gatewaytest.New(t)
	config := configOf(t, g)
	ctx := context.Background()
	store, err := peers.OpenSQLite(ctx, g.Config.WireGuard.Store)
	require.NoError(t, err)
	defer store.Close()
	now := time.Now()
	_, secret, err := store.CreateToken(ctx, "", time.Hour, 1, now)
	require.NoError(t, err)
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	hostile := "\x1b[2J\x1b]0;pwned\x07x\r\n9    10.99.0.9       AAAAAAAA…  admin"
	_, err = store.Enroll(ctx, peers.EnrollRequest{Secret: secret, Key: k.Public(), Label: hostile,
		Pool: gatewaytest.TunnelAddress.Masked(), Reserved: []netip.Addr{gatewaytest.TunnelAddress.Addr()}, Now: now})
	require.NoError(t, err)

	code, out, errb := run(t, "peer", "list", "--config", config)
	require.Equal(t, 0, code, errb)
	for _, c := range []string{"\x1b", "\x07", "\r"} {
		assert.NotContains(t, out, c, "a control character reached the terminal")
	}
	assert.Equal(t, 2, strings.Count(out, "\n"), "a header and one row: the label forged no row:\n%s", out)
	assert.Contains(t, out, `\x1b[2J\x1b]0;pwned\x07x\x0d\x0a9`, "the label, escaped")
}

func TestDNSExplainAndLists(t *testing.T) {
	g := gatewaytest.New(t)
	config := configOf(t, g)
	code, out, errb := run(t, "dns", "explain", "--config", config, gatewaytest.BlockedName)
	require.Equal(t, 0, code, errb)
	assert.True(t, strings.HasPrefix(out, gatewaytest.BlockedName+": blocked"), out)
	assert.Contains(t, out, "||phishing.test^")
	code, out, errb = run(t, "dns", "explain", "--config", config, "--json", gatewaytest.BlockedName)
	require.Equal(t, 0, code, errb)
	var ex gwapi.DNSExplanation
	require.NoError(t, json.Unmarshal([]byte(out), &ex))
	assert.True(t, ex.Decision.Blocked)

	code, out, errb = run(t, "dns", "lists", "--config", config)
	require.Equal(t, 0, code, errb)
	assert.Contains(t, out, "phishing")
	assert.Contains(t, out, "block phishing")
	code, _, errb = run(t, "dns", "explain", "--config", config)
	assert.Equal(t, 2, code)
	assert.Contains(t, errb, "usage: tether-gateway dns explain")
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/tunnel"
)

func TestTunnelKeygenNeverPrintsTheKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "private.key")
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	require.Equal(t, 0, Main(context.Background(), []string{"tunnel", "keygen", "--out", key}, env), errb.String())
	secret, err := os.ReadFile(key)
	require.NoError(t, err)
	assert.NotContains(t, out.String(), strings.TrimSpace(string(secret)))
	st, _ := os.Stat(key)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	pub := strings.TrimSpace(out.String())

	out.Reset()
	require.Equal(t, 0, Main(context.Background(), []string{"tunnel", "pubkey", "--key", key}, env))
	assert.Equal(t, pub, strings.TrimSpace(out.String()))
	assert.Equal(t, 1, Main(context.Background(), []string{"tunnel", "keygen", "--out", key}, env), "never overwrites")
}

func TestTunnelPlan(t *testing.T) {
	dir := t.TempDir()
	k, _ := tunnel.GeneratePrivateKey()
	g, _ := tunnel.GeneratePrivateKey()
	conf := filepath.Join(dir, "wg0.conf")
	cfg := "[Interface]\nPrivateKey = " + keyB64(t, k) + "\nAddress = 10.99.0.2/32\nDNS = 10.99.0.1\n\n[Peer]\nPublicKey = " + g.Public().String() + "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 198.18.2.2:51820\n"
	require.NoError(t, os.WriteFile(conf, []byte(cfg), 0o600))
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	require.Equal(t, 0, Main(context.Background(), []string{"tunnel", "plan", "-c", conf, "--mode", "split", "--company", "10.77.0.0/16"}, env), errb.String())
	var plan tunnel.Plan
	require.NoError(t, json.Unmarshal(out.Bytes(), &plan))
	assert.Equal(t, tunnel.ModeSplit, plan.Mode)
	assert.Len(t, plan.Routes, 2)

	errb.Reset()
	require.NoError(t, os.WriteFile(conf, []byte("[Interface]\nBogus = 1\n"), 0o600))
	assert.Equal(t, 1, Main(context.Background(), []string{"tunnel", "plan", "-c", conf}, env))
	assert.Contains(t, errb.String(), "wg0.conf:2: [Interface] bogus: unknown key")
}

// keyB64 writes k to a file and reads back the base64, the only way out.
func keyB64(t *testing.T, k tunnel.PrivateKey) string {
	p := filepath.Join(t.TempDir(), "k")
	require.NoError(t, tunnel.WriteKeyFile(p, k))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

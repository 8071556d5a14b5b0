package tunnel

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolvConfRestoresExactly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	orig := "# from DHCP\nnameserver 192.168.77.1\nsearch home.test\n\toptions   rotate\n"
	require.NoError(t, os.WriteFile(path, []byte(orig), 0o644))
	r := &ResolvConf{Path: path, Backup: filepath.Join(dir, "state", "resolv.conf.orig")}
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, "tether0", addrs("10.99.0.1"), []string{"corp.example"}, true))
	got, _ := os.ReadFile(path)
	assert.Contains(t, string(got), "nameserver 10.99.0.1\nsearch corp.example\n")
	assert.NotContains(t, string(got), "192.168.77.1")
	require.NoError(t, r.Restore(ctx))
	got, _ = os.ReadFile(path)
	assert.Equal(t, orig, string(got), "byte for byte")
	require.NoError(t, r.Restore(ctx), "idempotent")
	st, _ := os.Stat(path)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}

func TestResolvConfReconcilesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	orig := "nameserver 192.168.77.1\n"
	require.NoError(t, os.WriteFile(path, []byte(orig), 0o644))
	r := &ResolvConf{Path: path, Backup: filepath.Join(dir, "resolv.conf.orig")}
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, "tether0", addrs("10.99.0.1"), nil, true))
	// The process dies here. A new one starts and applies again: the
	// backup must still hold the ISP's file, not ours.
	r2 := &ResolvConf{Path: path, Backup: r.Backup}
	require.NoError(t, r2.Apply(ctx, "tether0", addrs("10.99.0.1"), nil, true))
	require.NoError(t, r2.Restore(ctx))
	got, _ := os.ReadFile(path)
	assert.Equal(t, orig, string(got))

	// A leftover backup after someone else rewrote the file is dropped.
	require.NoError(t, r.Apply(ctx, "tether0", addrs("10.99.0.1"), nil, true))
	require.NoError(t, os.WriteFile(path, []byte("nameserver 9.9.9.9\n"), 0o644))
	restored, err := r.Reconcile(ctx)
	require.NoError(t, err)
	assert.False(t, restored)
	got, _ = os.ReadFile(path)
	assert.Equal(t, "nameserver 9.9.9.9\n", string(got))
}

func TestResolvedCommands(t *testing.T) {
	var calls []string
	r := &Resolved{Run: func(_ context.Context, args ...string) error {
		calls = append(calls, strings.Join(args, " "))
		return nil
	}}
	ctx := context.Background()
	require.NoError(t, r.Apply(ctx, "tether0", []netip.Addr{netip.MustParseAddr("10.99.0.1")}, []string{"corp.example"}, false))
	require.NoError(t, r.Restore(ctx))
	require.NoError(t, r.Restore(ctx))
	assert.Equal(t, []string{
		"dns tether0 10.99.0.1",
		"domain tether0 corp.example",
		"default-route tether0 false",
		"revert tether0",
	}, calls)
	calls = nil
	require.NoError(t, r.Apply(ctx, "tether0", []netip.Addr{netip.MustParseAddr("10.99.0.1")}, nil, true))
	assert.Equal(t, "domain tether0 ~.", calls[1])
	assert.Equal(t, "default-route tether0 true", calls[2])
}

package tunnel

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, path string) *Config {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	c, err := ParseConfig(f, filepath.Base(path))
	require.NoError(t, err)
	return c
}

func TestStockConfigRoundTrip(t *testing.T) {
	for _, name := range []string{"stock-client.conf", "stock-server.conf"} {
		t.Run(name, func(t *testing.T) {
			c := parseFile(t, filepath.Join("testdata", name))
			out := c.Marshal()
			c2, err := ParseConfig(bytes.NewReader(out), "exported")
			require.NoError(t, err)
			assert.Equal(t, c, c2)
			assert.Equal(t, out, c2.Marshal(), "export is a fixed point")
		})
	}
}

func TestStockClientFields(t *testing.T) {
	c := parseFile(t, "testdata/stock-client.conf")
	in := c.Interface
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.192.122.3/32"), netip.MustParsePrefix("fd00:abcd::3/128")}, in.Addresses)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.192.122.1")}, in.DNS)
	assert.Equal(t, []string{"corp.example"}, in.SearchDomains)
	assert.Equal(t, 1380, in.MTU)
	assert.Equal(t, []string{`logger "tunnel up"`}, in.PostUp)
	require.Len(t, c.Peers, 1)
	p := c.Peers[0]
	assert.Equal(t, "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", p.PublicKey.String())
	assert.False(t, p.PresharedKey.IsZero())
	assert.Equal(t, "192.95.5.67:1234", p.Endpoint)
	assert.Equal(t, 25, p.PersistentKeepalive)
	assert.Len(t, p.AllowedIPs, 2)
}

func TestParseErrorsAreLineNumbered(t *testing.T) {
	const key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	for _, tc := range []struct {
		name, in, want string
	}{
		{"no interface", "[Peer]\nPublicKey = " + key + "\n", "x.conf: no [Interface] section"},
		{"unknown section", "[Interface]\n[Router]\n", "x.conf:2: unknown section"},
		{"unknown key", "[Interface]\nPrivateKey = " + key + "\nColour = blue\n", "x.conf:3: [Interface] colour: unknown key"},
		{"no equals", "[Interface]\nPrivateKey\n", "x.conf:2: want key = value"},
		{"bad port", "[Interface]\nListenPort = 70000\n", "x.conf:2: [Interface] listenport"},
		{"bad address", "\n\n[Interface]\nAddress = 10.0.0.300/24\n", "x.conf:4: [Interface] address: \"10.0.0.300/24\" is not a prefix"},
		{"bad endpoint", "[Interface]\nPrivateKey = " + key + "\n[Peer]\nEndpoint = fe80::1:51820\n", "x.conf:4: [Peer] endpoint"},
		{"bad mtu", "[Interface]\nMTU = 20\n", "x.conf:2: [Interface] mtu: 20 is outside"},
		{"key before section", "PrivateKey = " + key + "\n", "x.conf:1: \"privatekey\" before any"},
		{"peer without key", "[Interface]\nPrivateKey = " + key + "\n[Peer]\nAllowedIPs = 0.0.0.0/0\n", "peer 1 has no PublicKey"},
		{"second interface", "[Interface]\n[Interface]\n", "x.conf:2: a second [Interface]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.in), "x.conf")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			var pe *ParseError
			assert.True(t, errors.As(err, &pe))
		})
	}
}

func TestParseErrorHidesPrivateKey(t *testing.T) {
	// A private key with one bad character: the error names the line, not
	// the secret.
	bad := "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm!="
	_, err := ParseConfig(strings.NewReader("[Interface]\nPrivateKey = "+bad+"\n"), "x.conf")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), bad[:20])
	assert.Contains(t, err.Error(), "x.conf:2")
}

func TestParseTolerance(t *testing.T) {
	const key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
	in := "# comment\r\n[interface]\r\n  privatekey=" + key + "  # trailing\r\nADDRESS = 10.0.0.2\r\nAddress = 10.0.0.3/32\r\n"
	c, err := ParseConfig(strings.NewReader(in), "crlf.conf")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("10.0.0.3/32")}, c.Interface.Addresses)
}

// TestStockWGQuickStripsExport hands our export to Debian's wg-quick, whose
// strip command parses it and removes the wg-quick-only keys; the result
// must equal our own StripForWG. Skips without wireguard-tools.
func TestStockWGQuickStripsExport(t *testing.T) {
	if _, err := exec.LookPath("wg-quick"); err != nil {
		t.Skip("skipping: wg-quick (wireguard-tools) is not installed")
	}
	c := parseFile(t, "testdata/stock-client.conf")
	dir := t.TempDir()
	path := filepath.Join(dir, "tether0.conf")
	require.NoError(t, WriteConfigFile(path, c))
	out, err := exec.Command("wg-quick", "strip", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	stripped, err := ParseConfig(bytes.NewReader(out), "stripped")
	require.NoError(t, err)
	want, err := ParseConfig(bytes.NewReader(c.StripForWG()), "ours")
	require.NoError(t, err)
	assert.Equal(t, want, stripped, "wg-quick strip and StripForWG agree")
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"stock-client.conf", "stock-server.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("[Interface]\nPrivateKey = \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(bytes.NewReader(data), "fuzz")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		out := c.Marshal()
		c2, err := ParseConfig(bytes.NewReader(out), "again")
		if err != nil {
			t.Fatalf("our own export does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(out, c2.Marshal()) {
			t.Fatalf("export is not a fixed point:\n%s\n---\n%s", out, c2.Marshal())
		}
	})
}

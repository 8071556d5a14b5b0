package gateway_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
)

// loadYAML loads a config file holding body.
func loadYAML(t *testing.T, body string) (gateway.Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return gateway.LoadConfig(p)
}

// TestPolicyDefaults: every key of policy: left out takes
// gwapi.DefaultPolicy()'s value, field by field, nested ones included,
// and default_mode follows allowed_modes.
func TestPolicyDefaults(t *testing.T) {
	def := gwapi.DefaultPolicy()
	with := func(change func(*gwapi.Policy)) gwapi.Policy {
		p := gwapi.DefaultPolicy()
		change(&p)
		return p
	}
	for _, tc := range []struct {
		name, yaml string
		want       gwapi.Policy
	}{
		{"no section", "name: x\n", def},
		{"an empty section", "policy: {}\n", def},
		{"only split", "policy: {allowed_modes: [split]}\n", with(func(p *gwapi.Policy) { p.AllowedModes, p.DefaultMode = []string{"split"}, "split" })},
		{"only full", "policy: {allowed_modes: [full]}\n", with(func(p *gwapi.Policy) { p.AllowedModes = []string{"full"} })},
		{"split by default", "policy: {default_mode: split}\n", with(func(p *gwapi.Policy) { p.DefaultMode = "split" })},
		{"untrusted networks left alone", "policy: {force_full_on_untrusted: false}\n", with(func(p *gwapi.Policy) { p.ForceFullOnUntrusted = false })},
		{"one figure of full_needs", "policy: {full_needs: {min_up_mbps: 1.5}}\n", with(func(p *gwapi.Policy) { p.FullNeeds.MinUpMbps = 1.5 })},
		{"no latency limit", "policy: {full_needs: {max_loaded_ms: 0}}\n", with(func(p *gwapi.Policy) { p.FullNeeds.MaxLoadedMS = 0 })},
		{"always_tunnel", "policy: {always_tunnel: [10.77.0.0/16, 'fd00::/8']}\n", with(func(p *gwapi.Policy) {
			p.AlwaysTunnel = []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16"), netip.MustParsePrefix("fd00::/8")}
		})},
		{"the kill switch required", "policy: {fail_closed: required}\n", with(func(p *gwapi.Policy) { p.FailClosed = "required" })},
		// The example, verbatim.
		{"the issue's example", `policy:
  allowed_modes: [full, split]     # what a client may use
  default_mode: full               # what auto picks when nothing argues otherwise
  force_full_on_untrusted: true    # captive portal, DNS hijack, open Wi-Fi, answers from elsewhere → full
  full_needs: {min_up_mbps: 3, min_down_mbps: 10, max_loaded_ms: 150}   # below this, auto uses split where allowed
  always_tunnel: [10.77.0.0/16]    # prefixes that go through the tunnel in every mode
  fail_closed: optional            # off | optional | required (the kill switch)
`, with(func(p *gwapi.Policy) { p.AlwaysTunnel = []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16")} })},
	} {
		cfg, err := loadYAML(t, tc.yaml)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, cfg.TunnelPolicy(), tc.name)
	}

	// A Config built in Go without DefaultConfig: the default policy.
	assert.Equal(t, def, gateway.Config{}.TunnelPolicy())
	// TunnelPolicy hands out copies: changing one changes no other.
	cfg := gateway.DefaultConfig()
	p := cfg.TunnelPolicy()
	p.AllowedModes[0] = "nope"
	assert.Equal(t, def.AllowedModes, cfg.TunnelPolicy().AllowedModes)
}

// TestPolicyValidation: each setting that cannot work is refused, and the
// error names its key; the key that moved says where it went.
func TestPolicyValidation(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no mode", "policy: {allowed_modes: []}\n", "policy.allowed_modes: name at least one"},
		{"an unknown mode", "policy: {allowed_modes: [full, tcp]}\n", `policy.allowed_modes: "tcp" is neither full nor split`},
		{"a default that is not allowed", "policy: {allowed_modes: [full], default_mode: split}\n", `policy.default_mode: "split" is not one of the allowed modes`},
		{"an unknown default", "policy: {default_mode: auto}\n", `policy.default_mode: "auto"`},
		{"a negative figure", "policy: {full_needs: {min_down_mbps: -1}}\n", "policy.full_needs: limits must not be negative"},
		{"a negative latency", "policy: {full_needs: {max_loaded_ms: -5}}\n", "policy.full_needs"},
		{"an unknown kill switch", "policy: {fail_closed: always}\n", `policy.fail_closed: "always" is not off, optional or required`},
		{"not a prefix", "policy: {always_tunnel: [10.77.0.0]}\n", "10.77.0.0"},
		{"a misspelt key", "policy: {allowed_mode: [full]}\n", "field allowed_mode not found"},
		{"a misspelt nested key", "policy: {full_needs: {min_up: 3}}\n", "field min_up not found"},
		{"the key that moved", wireguardYAML + "  allowed_modes: [full, split]\n", "wireguard.allowed_modes: moved to policy.allowed_modes"},
		{"a canary that is no name", "diagnostics: {canary: 'login phishing'}\n", `diagnostics.canary: "login phishing" is not a DNS name`},
		{"a probe name with a control character", "diagnostics: {probe_name: \"a\\x1b.test\"}\n", "diagnostics.probe_name"},
		{"a label too long", "diagnostics: {canary: " + strings.Repeat("a", 64) + ".test}\n", "diagnostics.canary"},
		{"a misspelt diagnostics key", "diagnostics: {canari: x.test}\n", "field canari not found"},
	} {
		_, err := loadYAML(t, tc.yaml)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
	// The moved key set in Go is refused the same way.
	cfg, err := loadYAML(t, wireguardYAML)
	require.NoError(t, err)
	cfg.WireGuard.AllowedModes = []string{"full"}
	assert.ErrorContains(t, cfg.Validate(), "moved to policy.allowed_modes")
	// Diagnostics names that are fine.
	_, err = loadYAML(t, "diagnostics: {canary: login.phishing.test., probe_name: _dmarc.corp-1.example}\n")
	assert.NoError(t, err)
}

// wireguardYAML is a minimal wireguard: section; the test needs no file
// it names until the gateway starts.
const wireguardYAML = `wireguard:
  address: 10.99.0.1/24
  key_file: /nonexistent/gateway.key
  endpoint: vpn.example.com:51820
  store: /nonexistent/peers.db
`

// TestWriteConfigSpellsThePolicyOut: a written config states the policy
// the gateway serves, and loads back to it; init's has it commented.
func TestWriteConfigSpellsThePolicyOut(t *testing.T) {
	dir := t.TempDir()
	cfg := gateway.DefaultConfig()
	cfg.Policy.AllowedModes = []string{"split"}
	cfg.Diagnostics = gateway.DiagnosticsConfig{Canary: "login.phishing.test", ProbeName: "intranet.corp.test"}
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, gateway.WriteConfig(path, cfg))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "default_mode: split", "the resolved default is written")
	got, err := gateway.LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, cfg.TunnelPolicy(), got.Policy)
	assert.Equal(t, cfg.Diagnostics, got.Diagnostics)

	init := gateway.DefaultConfig()
	_, _, err = gateway.InitFiles(filepath.Join(dir, "init", "gateway.yaml"), &init, "gw.example.com:51820")
	require.NoError(t, err)
	b, err = os.ReadFile(filepath.Join(dir, "init", "gateway.yaml"))
	require.NoError(t, err)
	for _, want := range []string{
		"# the company's tunnel policy, sent to every device",
		"    # what a client may use: full, split or both\n    allowed_modes:",
		"    # what auto picks when nothing argues otherwise\n    default_mode: full\n",
		"force_full_on_untrusted: true",
		"    full_needs:\n        min_up_mbps: 3\n",
		"    # the kill switch: off, optional (the employee's choice) or required\n    fail_closed: optional\n",
	} {
		assert.Contains(t, string(b), want)
	}
	assert.NotContains(t, string(b), "wireguard:\n    allowed_modes", "the moved key is not written")
}

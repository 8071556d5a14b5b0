package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/resolver"
	"github.com/tetherwfh/tether/internal/confload"
	"github.com/tetherwfh/tether/internal/logging"
	"github.com/tetherwfh/tether/netdiag/measureserver"
)

// DefaultAPIListen is where the HTTP API listens when the config says
// nothing. 8443 stays clear of the privileged ports and of 8080, which
// home routers and proxies like to take.
const DefaultAPIListen = "127.0.0.1:8443"

// DefaultSTAMPListen is the STAMP reflector's default address: the
// protocol's well-known port on loopback, like the API.
const DefaultSTAMPListen = "127.0.0.1:862"

// Config is tether-gateway's configuration file.
type Config struct {
	// Name identifies the gateway to clients and in logs.
	Name string `yaml:"name"`
	// API configures the HTTP API.
	API APIConfig `yaml:"api"`
	// Measure configures the measurement service clients diagnose their
	// lines against.
	Measure MeasureConfig `yaml:"measure"`
	// DNS configures the filtering resolver; absent means no resolver.
	DNS *resolver.Config `yaml:"dns,omitempty"`
	// Diagnostics names what clients' check of the company filter asks
	// the resolver; optional.
	Diagnostics DiagnosticsConfig `yaml:"diagnostics,omitempty"`
	// WireGuard configures the endpoint clients enroll with and connect
	// to; absent means none.
	WireGuard *WireGuardConfig `yaml:"wireguard,omitempty"`
	// Policy is the company's tunnel policy, sent to every device with
	// its enrollment and on /v1/device. A key the file leaves out keeps
	// DefaultConfig's value, which is gwapi.DefaultPolicy()'s; what
	// TunnelPolicy says of the zero values is what the gateway serves.
	Policy gwapi.Policy `yaml:"policy"`
	// LogLevel is debug, info, warn or error; empty means info.
	LogLevel string `yaml:"log_level,omitempty"`
}

// MeasureConfig configures the measurement service. Its HTTP side (the
// responsiveness endpoints, /down, /up, /generate_204, /ip) is served on
// the API listener and, inside the tunnel, on the gateway's tunnel
// address; STAMP needs a UDP socket of its own.
//
// Two pools serve it, apart in every count, guard and budget: enrolled
// devices (everyone inside the tunnel, and on the API once devices
// authenticate) under the limits at this level, and everyone else on the
// API under Public's, so outsiders can never lock employees out.
type MeasureConfig struct {
	// STAMPListen is the UDP host:port of the STAMP reflector (RFC 8762);
	// empty disables it. The standard port is 862.
	STAMPListen string `yaml:"stamp_listen"`
	// MaxMbps is the enrolled devices' bandwidth guard: their speed
	// tests together, per direction, are paced to this many Mbit/s so
	// they leave the link to WireGuard and DNS. Zero turns it off; set it
	// to about half the gateway's uplink.
	MaxMbps float64 `yaml:"max_mbps,omitempty"`
	// MaxTransfersPerClient bounds one device's (one peer's) concurrent
	// transfers; zero means 32.
	MaxTransfersPerClient int `yaml:"max_transfers_per_client,omitempty"`
	// MaxTransfers bounds all devices' concurrent transfers; zero means 128.
	MaxTransfers int `yaml:"max_transfers,omitempty"`
	// MaxBytesPerRequest caps one download (/down and /large) or upload,
	// in both pools; zero means 1 GiB.
	MaxBytesPerRequest int64 `yaml:"max_bytes_per_request,omitempty"`
	// StallTimeout ends a transfer that moves no byte for this long, so a
	// reader that stops never holds its slot; zero means 10 s.
	StallTimeout time.Duration `yaml:"stall_timeout,omitempty"`
	// Public limits clients that did not authenticate.
	Public PublicMeasureConfig `yaml:"public,omitempty"`
}

// PublicMeasureConfig limits the measurement service for clients that are
// not enrolled devices. Zero values mean conservative defaults
// (measureserver.DefaultPublicLimits), -1 turns a rate or a budget off.
type PublicMeasureConfig struct {
	// MaxMbps paces all public transfers together, per direction;
	// zero means 100.
	MaxMbps float64 `yaml:"max_mbps,omitempty"`
	// MaxTransfersPerClient bounds one client network's (an IPv4
	// address, an IPv6 /64) concurrent transfers; zero means 32.
	MaxTransfersPerClient int `yaml:"max_transfers_per_client,omitempty"`
	// MaxTransfers bounds all public transfers together; zero means 64.
	MaxTransfers int `yaml:"max_transfers,omitempty"`
	// ClientBytes is one client network's byte budget per
	// ClientBytesPeriod, both directions together; zero means 256 MiB.
	ClientBytes       int64         `yaml:"client_bytes,omitempty"`
	ClientBytesPeriod time.Duration `yaml:"client_bytes_period,omitempty"`
}

func (m MeasureConfig) validate() error {
	if m.MaxMbps < 0 || m.MaxTransfersPerClient < 0 || m.MaxTransfers < 0 || m.MaxBytesPerRequest < 0 || m.StallTimeout < 0 {
		return errors.New("measure: max_mbps, max_transfers_per_client, max_transfers, max_bytes_per_request and stall_timeout must not be negative")
	}
	p := m.Public
	if (p.MaxMbps < 0 && p.MaxMbps != measureserver.NoLimit) || (p.ClientBytes < 0 && p.ClientBytes != measureserver.NoLimit) {
		return errors.New("measure.public: max_mbps and client_bytes must be positive, 0 for the default or -1 for none")
	}
	if p.MaxTransfersPerClient < 0 || p.MaxTransfers < 0 || p.ClientBytesPeriod < 0 {
		return errors.New("measure.public: max_transfers_per_client, max_transfers and client_bytes_period must not be negative")
	}
	return nil
}

// trustedLimits are the enrolled devices' limits.
func (m MeasureConfig) trustedLimits() measureserver.Limits {
	l := measureserver.Limits{MaxConcurrentPerClient: m.MaxTransfersPerClient, MaxConcurrent: m.MaxTransfers, MaxMbps: m.MaxMbps}
	if l.MaxMbps == 0 {
		l.MaxMbps = measureserver.NoLimit
	}
	return l
}

// publicLimits are everyone else's.
func (m MeasureConfig) publicLimits() measureserver.Limits {
	p := m.Public
	return measureserver.Limits{MaxConcurrentPerClient: p.MaxTransfersPerClient, MaxConcurrent: p.MaxTransfers, MaxMbps: p.MaxMbps,
		ClientBytes: p.ClientBytes, ClientBytesPeriod: p.ClientBytesPeriod}
}

// DiagnosticsConfig names what clients' check of the company filter
// (netdiag's) asks: sent with the enrollment and on /v1/device. The zero
// value names nothing, and clients skip the check.
type DiagnosticsConfig struct {
	// Canary is a name the company's filter blocks, e.g. a name on a
	// block list; empty skips the filter check.
	Canary string `yaml:"canary,omitempty"`
	// ProbeName is a name the company's resolver must resolve (a local
	// zone's, say), the check's control; empty means a public name.
	ProbeName string `yaml:"probe_name,omitempty"`
}

func (d DiagnosticsConfig) validate() error {
	for _, f := range []struct{ key, name string }{{"diagnostics.canary", d.Canary}, {"diagnostics.probe_name", d.ProbeName}} {
		if f.name != "" && !validHostName(f.name) {
			return fmt.Errorf("%s: %q is not a DNS name (letters, digits, hyphens and underscores, in labels of at most 63 bytes)", f.key, f.name)
		}
	}
	return nil
}

// validHostName reports whether n is a DNS name of plain labels, with or
// without the final dot.
func validHostName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// TunnelPolicy is the policy the gateway serves: c.Policy, with the zero
// values that mean "unset" filled from gwapi.DefaultPolicy():
//   - a zero Policy (a Config not made from DefaultConfig) is the default
//     policy entire;
//   - allowed_modes unset (nil) is both modes; set to [] it is an error;
//   - default_mode "" is full where allowed, else the one allowed mode;
//   - fail_closed "" is optional.
//
// force_full_on_untrusted and full_needs have no "unset" of their own:
// false and 0 are settings (0 sets no limit), so a file that leaves them
// out keeps DefaultConfig's true and figures.
func (c Config) TunnelPolicy() gwapi.Policy {
	def := gwapi.DefaultPolicy()
	p := c.Policy
	if reflect.ValueOf(p).IsZero() {
		return def
	}
	if p.AllowedModes == nil {
		p.AllowedModes = def.AllowedModes
	}
	p.AllowedModes, p.AlwaysTunnel = slices.Clone(p.AllowedModes), slices.Clone(p.AlwaysTunnel)
	if p.DefaultMode == "" && len(p.AllowedModes) > 0 {
		p.DefaultMode = p.AllowedModes[0]
		if p.Allows(gwapi.ModeFull) {
			p.DefaultMode = gwapi.ModeFull
		}
	}
	if p.FailClosed == "" {
		p.FailClosed = def.FailClosed
	}
	return p
}

// APIConfig configures the HTTP API.
type APIConfig struct {
	// Listen is the host:port to serve on; empty means DefaultAPIListen.
	Listen string `yaml:"listen"`
	// AdminTokenFile holds the admin API's bearer token (0600); empty
	// turns the admin API off.
	AdminTokenFile string `yaml:"admin_token_file,omitempty"`
	// MetricsTokenFile holds a bearer token (0600) that may read
	// /metrics and nothing else, for Prometheus; the admin token may too.
	// With neither, /metrics is off.
	MetricsTokenFile string `yaml:"metrics_token_file,omitempty"`
	// PublicURL is the API's base URL as clients reach it, e.g.
	// https://gw.example.com:8443, written into the measurement
	// service's config document; empty means the address a client
	// connected to (never its Host header).
	PublicURL string `yaml:"public_url,omitempty"`
	// IdleTimeout closes a keep-alive connection (HTTP/1.1 or HTTP/2)
	// with no request in flight for this long; zero means 60 s.
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty"`
	// TLSCertFile and TLSKeyFile serve the API over HTTPS; init writes a
	// self-signed pair, whose fingerprint clients pin. Both empty serve
	// plain HTTP (with h2c), for loopback and tests only.
	TLSCertFile string `yaml:"tls_cert_file,omitempty"`
	TLSKeyFile  string `yaml:"tls_key_file,omitempty"`
}

// DefaultConfig is what `tether-gateway init` writes, and what LoadConfig
// reads a file over. Its Policy is gwapi.DefaultPolicy() but for
// default_mode, left unset so that it follows allowed_modes.
func DefaultConfig() Config {
	pol := gwapi.DefaultPolicy()
	pol.DefaultMode = ""
	return Config{Name: "gateway", API: APIConfig{Listen: DefaultAPIListen}, Measure: MeasureConfig{STAMPListen: DefaultSTAMPListen},
		Policy: pol, LogLevel: "info"}
}

// LoadConfig reads and validates the config file at path.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if err := confload.File(path, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("name: must not be empty")
	}
	if err := validateListen(c.API.Listen); err != nil {
		return fmt.Errorf("api.listen: %w", err)
	}
	if c.API.IdleTimeout < 0 {
		return errors.New("api.idle_timeout: must not be negative")
	}
	if (c.API.TLSCertFile == "") != (c.API.TLSKeyFile == "") {
		return errors.New("api.tls_cert_file and api.tls_key_file: set both, or neither for plain HTTP")
	}
	if c.Measure.STAMPListen != "" {
		if err := validateListen(c.Measure.STAMPListen); err != nil {
			return fmt.Errorf("measure.stamp_listen: %w", err)
		}
	}
	if err := c.Measure.validate(); err != nil {
		return err
	}
	if c.API.PublicURL != "" {
		if u, err := url.Parse(c.API.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("api.public_url %q: want the API's base URL as clients reach it, e.g. https://gw.example.com:8443", c.API.PublicURL)
		}
	}
	if c.WireGuard != nil {
		if err := c.WireGuard.validate(); err != nil {
			return err
		}
	}
	if c.DNS != nil {
		if err := validateListen(c.DNS.Listen); err != nil {
			return fmt.Errorf("dns.listen: %w", err)
		}
	}
	if err := c.TunnelPolicy().Validate(); err != nil {
		return err // it names the key
	}
	if err := c.Diagnostics.validate(); err != nil {
		return err
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("log_level: %w", err)
	}
	return nil
}

func validateListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && host == "") {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// WriteConfig writes cfg to path, refusing to replace an existing file,
// with its policy spelled out as TunnelPolicy serves it. The file is
// 0600: later versions keep the gateway's private key here.
func WriteConfig(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.Policy = cfg.TunnelPolicy()
	data, err := commentedYAML(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	return f.Close()
}

// configComments explain each key in the file WriteConfig writes, so
// the starter config documents itself; CONFIG.md has the full story.
var configComments = map[string]string{
	"":                               "tether-gateway configuration; every key is in gateway/CONFIG.md",
	"name":                           "shown to clients and in logs",
	"api":                            "the HTTPS API: health, enrollment, admin, metrics, measurement service",
	"api.listen":                     "host:port; 0.0.0.0:8443 to serve clients",
	"api.admin_token_file":           "bearer token of the admin API (tether-gateway token/peer use it)",
	"api.metrics_token_file":         "bearer token that may read /metrics (for Prometheus' credentials_file)",
	"api.tls_cert_file":              "self-signed by init; clients pin it (tether-gateway fingerprint)",
	"measure":                        "the measurement service; optional: max_mbps (enrolled devices' guard), max_transfers_per_client, max_transfers, max_bytes_per_request, stall_timeout, public (limits for everyone else)",
	"measure.stamp_listen":           "UDP STAMP reflector (RFC 8762); 0.0.0.0:862 to serve clients",
	"wireguard":                      "the WireGuard endpoint; optional: interface, forward_internet, masquerade_company",
	"wireguard.mode":                 "userspace (any OS, no root) or tun (Linux, CAP_NET_ADMIN: kernel forwarding and NAT)",
	"wireguard.listen_port":          "UDP",
	"wireguard.address":              "the gateway's tunnel address; its prefix is the clients' pool",
	"wireguard.key_file":             "the gateway's private key (0600)",
	"wireguard.endpoint":             "host:port clients reach WireGuard on",
	"wireguard.company_prefixes":     "routed through the tunnel in split mode, e.g. [10.77.0.0/16]",
	"wireguard.store":                "SQLite peer database",
	"wireguard.enroll_per_minute":    "enrollment attempts per client address (IPv6: per /64)",
	"diagnostics":                    "what clients' check of the company filter asks the resolver; optional: canary, probe_name",
	"diagnostics.canary":             "a name the company's filter blocks; clients check it is blocked",
	"diagnostics.probe_name":         "a name the company's resolver must resolve (the check's control)",
	"policy":                         "the company's tunnel policy, sent to every device; optional: always_tunnel (prefixes through the tunnel in every mode)",
	"policy.allowed_modes":           "what a client may use: full, split or both",
	"policy.default_mode":            "what auto picks when nothing argues otherwise",
	"policy.force_full_on_untrusted": "captive portal, DNS hijack, open Wi-Fi, answers from elsewhere: full tunnel",
	"policy.full_needs":              "the line a full tunnel needs (0: no limit); below it, auto uses split where allowed",
	"policy.always_tunnel":           "prefixes that go through the tunnel in every mode, e.g. [10.77.0.0/16]",
	"policy.fail_closed":             "the kill switch: off, optional (the employee's choice) or required",
	"log_level":                      "debug, info, warn or error",
}

// commentedYAML renders cfg with configComments above its keys.
func commentedYAML(cfg Config) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(cfg); err != nil {
		return nil, err
	}
	doc.HeadComment = configComments[""]
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := prefix + n.Content[i].Value
			if c, ok := configComments[key]; ok {
				n.Content[i].HeadComment = c
			}
			walk(n.Content[i+1], key+".")
		}
	}
	walk(&doc, "")
	return yaml.Marshal(&doc)
}

// InitFiles writes a starting configuration at path with a WireGuard
// endpoint: the config (0600) and, beside it, the secrets WriteSecrets
// writes. It refuses to replace any of them. It returns what it wrote,
// and the certificate's pin for clients.
func InitFiles(path string, cfg *Config, endpoint string) ([]string, string, error) {
	dir := filepath.Dir(path)
	files := SecretFiles(dir)
	for _, f := range append([]string{path}, files.Paths()...) {
		if _, err := os.Stat(f); err == nil {
			return nil, "", fmt.Errorf("%s exists; init never replaces a file", f)
		}
	}
	cfg.WireGuard = &WireGuardConfig{Mode: ModeUserspace, EnrollPerMinute: 10, ListenPort: 51820, Address: netip.MustParsePrefix("10.99.0.1/24"),
		Endpoint: endpoint, Store: filepath.Join(dir, "peers.db")}
	files.Apply(cfg)
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	host, _, _ := net.SplitHostPort(endpoint)
	sec, err := WriteSecrets(dir, []string{host, "localhost", "127.0.0.1", "::1"}, time.Now())
	if err != nil {
		return nil, "", err
	}
	if err := WriteConfig(path, *cfg); err != nil {
		return nil, "", err
	}
	return []string{path, sec.KeyFile + " (public key " + sec.PublicKey.String() + ")", sec.AdminTokenFile, sec.MetricsTokenFile, sec.CertFile, sec.CertKeyFile}, sec.Pin, nil
}

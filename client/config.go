package client

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/confload"
	"github.com/tetherwfh/tether/internal/logging"
)

// Defaults of the daemon's configuration.
const (
	// DefaultCheckInterval paces the gateway health check: often enough
	// that the tray is never more than a few seconds stale, rarely enough
	// to cost nothing on a metered hotspot (one small request).
	DefaultCheckInterval = 5 * time.Second
	// minCheckInterval stops a config from turning the check into a flood.
	minCheckInterval = 100 * time.Millisecond
)

// DefaultCaptiveURL is the captive-portal check's URL: the one Android
// and Chrome use, which answers 204 No Content wherever nothing
// intercepts the web.
const DefaultCaptiveURL = "http://connectivitycheck.gstatic.com/generate_204"

// DefaultStateDir is where tetherd keeps its enrollment, keys, settings
// and reports on a system install.
const DefaultStateDir = "/var/lib/tether"

// Config is tetherd's configuration file. The enrollment itself (which
// gateway, keys, policy) lives in the state directory, written by
// `tether enroll`; the config says where things are.
type Config struct {
	// Gateway is the base URL of the gateway's HTTP API that `tether
	// enroll` uses when given none; optional.
	Gateway string `yaml:"gateway,omitempty"`
	// GatewayPin trusts an https gateway's self-signed certificate by its
	// fingerprint (sha256:…, from `tether-gateway fingerprint`); empty
	// means the system's roots.
	GatewayPin string `yaml:"gateway_pin,omitempty"`
	// Socket is where the local API listens; empty means
	// localapi.DefaultSocket.
	Socket string `yaml:"socket"`
	// SocketGroup is the group (a name or a number) whose members may use
	// the local API, besides root; the socket is 0660 root:group. Empty
	// means root (and the daemon's own user) only.
	SocketGroup string `yaml:"socket_group,omitempty"`
	// StateDir holds the enrollment, keys, settings and reports (0700);
	// empty means DefaultStateDir.
	StateDir string `yaml:"state_dir,omitempty"`
	// CheckInterval paces the gateway health check; zero means
	// DefaultCheckInterval.
	CheckInterval time.Duration `yaml:"check_interval,omitempty"`
	// Resolvers are the DNS servers (host:port) a diagnosis outside the
	// tunnel checks as this network's; empty means the system's (from
	// /etc/resolv.conf or the OS). For a network whose resolvers the OS
	// does not report, or a lab.
	Resolvers []string `yaml:"resolvers,omitempty"`
	// CaptiveURL is the plain-HTTP URL a diagnosis outside the tunnel
	// fetches to find a captive portal: it answers 204 No Content on an
	// open network. Empty means DefaultCaptiveURL; "off" skips the check.
	CaptiveURL string `yaml:"captive_url,omitempty"`
	// Monitor is on (empty) or off: the line monitor, a probe to the
	// gateway every 2 s (under 1 kbit/s) that suggests a hotspot when the
	// line is saturated.
	Monitor string `yaml:"monitor,omitempty"`
	// LogLevel is debug, info, warn or error; empty means info.
	LogLevel string `yaml:"log_level,omitempty"`
}

// LoadConfig reads and validates the config file at path.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	if err := confload.File(path, &cfg); err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg.withDefaults(), nil
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	var u *url.URL
	if c.Gateway != "" {
		var err error
		if u, err = url.Parse(c.Gateway); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("gateway: %q must be an http:// or https:// URL with a host", c.Gateway)
		}
	}
	if c.GatewayPin != "" {
		if u == nil {
			return errors.New("gateway_pin: a pin needs a gateway")
		}
		if _, err := gwapi.ParsePin(c.GatewayPin); err != nil {
			return fmt.Errorf("gateway_pin: %w", err)
		}
		if u.Scheme != "https" {
			return errors.New("gateway_pin: a pin needs an https:// gateway")
		}
	}
	if c.CheckInterval != 0 && c.CheckInterval < minCheckInterval {
		return fmt.Errorf("check_interval: %v is below the minimum %v", c.CheckInterval, minCheckInterval)
	}
	if c.Monitor != "" && c.Monitor != "on" && c.Monitor != "off" {
		return fmt.Errorf("monitor: %q: want on or off", c.Monitor)
	}
	if c.CaptiveURL != "" && c.CaptiveURL != "off" {
		if u, err := url.Parse(c.CaptiveURL); err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("captive_url: %q must be an http:// URL (a portal intercepts plain HTTP), or off", c.CaptiveURL)
		}
	}
	for _, r := range c.Resolvers {
		if _, err := netip.ParseAddrPort(r); err != nil {
			return fmt.Errorf("resolvers: %q is not an address:port: %w", r, err)
		}
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("log_level: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Socket == "" {
		c.Socket = localapi.DefaultSocket
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.CaptiveURL == "" {
		c.CaptiveURL = DefaultCaptiveURL
	}
	return c
}

// WriteConfig writes cfg to path (0600), replacing any file there.
func WriteConfig(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.WriteFile(path, append([]byte("# tetherd configuration\n"), data...), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

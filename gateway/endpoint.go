package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/peers"
	"github.com/tetherwfh/tether/internal/keyrate"
	"github.com/tetherwfh/tether/tunnel"
)

// WireGuardConfig is the gateway's WireGuard endpoint.
type WireGuardConfig struct {
	// Mode is the data plane: userspace (default; any OS, no root) or tun
	// (Linux, root: kernel forwarding and nftables masquerade).
	Mode string `yaml:"mode,omitempty"`
	// Interface names the TUN device in tun mode; default tgw0.
	Interface string `yaml:"interface,omitempty"`
	// ListenPort is the UDP port; default 51820.
	ListenPort uint16 `yaml:"listen_port"`
	// Address is the gateway's tunnel address, and its prefix is the pool
	// clients' addresses come from, e.g. 10.99.0.1/24.
	Address netip.Prefix `yaml:"address"`
	// KeyFile holds the gateway's private key (0600); init writes it.
	KeyFile string `yaml:"key_file"`
	// Endpoint is host:port as clients reach it, sent at enrollment.
	Endpoint string `yaml:"endpoint"`
	// CompanyPrefixes are routed through the tunnel in split mode.
	CompanyPrefixes []netip.Prefix `yaml:"company_prefixes"`
	// AllowedModes moved to Config.Policy (policy.allowed_modes), with
	// the rest of the company's tunnel policy. Set, it is an error that
	// says so, where the key would otherwise be ignored or unknown.
	AllowedModes []string `yaml:"allowed_modes,omitempty"`
	// Store is the SQLite peer database.
	Store string `yaml:"store"`
	// EnrollPerMinute bounds enrollment attempts per client address (an
	// IPv6 /64 counts as one address).
	EnrollPerMinute int `yaml:"enroll_per_minute"`
	// AddressQuarantine keeps a revoked peer's tunnel address unused this
	// long; zero means peers.DefaultQuarantine, negative none (tests).
	AddressQuarantine time.Duration `yaml:"address_quarantine,omitempty"`
	// ForwardInternet lets full-tunnel peers reach the internet through
	// the gateway; unset means yes when policy.allowed_modes allows full.
	ForwardInternet *bool `yaml:"forward_internet,omitempty"`
	// MasqueradeCompany hides peers behind the gateway's address toward
	// the company prefixes too (tun mode), for company networks with no
	// route back to the pool. Userspace mode always does, by its nature.
	MasqueradeCompany bool `yaml:"masquerade_company,omitempty"`
}

// DefaultTUNInterface names the gateway's TUN device.
const DefaultTUNInterface = "tgw0"

// internet reports whether peers reach the internet through the
// gateway under pol.
func (w *WireGuardConfig) internet(pol gwapi.Policy) bool {
	if w.ForwardInternet != nil {
		return *w.ForwardInternet
	}
	return pol.Allows(gwapi.ModeFull)
}

func (w *WireGuardConfig) validate() error {
	switch w.Mode {
	case "", ModeUserspace, ModeTUN:
	default:
		return fmt.Errorf("wireguard.mode: %q is neither userspace nor tun", w.Mode)
	}
	if len(w.Interface) > 15 || strings.ContainsAny(w.Interface, "/ \t\n\"") {
		return fmt.Errorf("wireguard.interface: %q is not an interface name (at most 15 bytes, no spaces, slashes or quotes)", w.Interface)
	}
	if !w.Address.IsValid() || w.Address.Bits() >= w.Address.Addr().BitLen()-1 {
		return fmt.Errorf("wireguard.address %v: want the gateway's address with the pool's prefix, e.g. 10.99.0.1/24", w.Address)
	}
	if w.KeyFile == "" {
		return errors.New("wireguard.key_file: required (tether-gateway init writes one)")
	}
	if w.Store == "" {
		return errors.New("wireguard.store: required (the peer database's path)")
	}
	if _, _, err := tunnel.SplitEndpoint(w.Endpoint); err != nil {
		return fmt.Errorf("wireguard.endpoint: %w", err)
	}
	if w.AllowedModes != nil {
		return errors.New("wireguard.allowed_modes: moved to policy.allowed_modes, in the policy: section with the rest of the company's tunnel policy (gateway/CONFIG.md)")
	}
	if w.EnrollPerMinute < 0 {
		return fmt.Errorf("wireguard.enroll_per_minute: %d is negative", w.EnrollPerMinute)
	}
	return nil
}

// wgEndpoint is the running WireGuard side of the gateway.
type wgEndpoint struct {
	cfg   WireGuardConfig
	key   tunnel.PrivateKey
	store peers.Store
	dev   dataPlane
	now   func() time.Time
	log   *slog.Logger
	// policy is the company's tunnel policy (Config.TunnelPolicy), and
	// diagnostics what devices' diagnoses need; both go to every device.
	policy      gwapi.Policy
	diagnostics func() gwapi.Diagnostics

	enrollLimit *keyrate.Limiter
	// devices verifies device credentials (device.go).
	devices *deviceAuth
	metrics *wgMetrics
	// services are the guards of the gateway's own in-tunnel listeners,
	// whose connections a revocation closes.
	services []*connGuard
}

// startWireGuard starts the endpoint with pol, the company's tunnel
// policy: it decides what the data plane forwards.
func startWireGuard(ctx context.Context, cfg WireGuardConfig, pol gwapi.Policy, opts Options, now func() time.Time) (*wgEndpoint, error) {
	if cfg.ListenPort == 0 {
		cfg.ListenPort = 51820
	}
	if cfg.EnrollPerMinute == 0 {
		cfg.EnrollPerMinute = 10
	}
	key, err := tunnel.ReadKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	store, err := peers.OpenSQLite(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	live, err := store.Peers(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	wc := &tunnel.Config{Interface: tunnel.Interface{PrivateKey: key, ListenPort: cfg.ListenPort, Addresses: []netip.Prefix{cfg.Address}}}
	for _, p := range live {
		if !p.Revoked {
			wc.Peers = append(wc.Peers, tunnel.Peer{PublicKey: p.PublicKey, AllowedIPs: []netip.Prefix{netip.PrefixFrom(p.Address, p.Address.BitLen())}})
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var dev dataPlane
	if cfg.Mode == ModeTUN {
		if cfg.Interface == "" {
			cfg.Interface = DefaultTUNInterface
		}
		dev, err = startTUNPlane(ctx, wc, cfg.Interface, policyOf(cfg, pol), cfg.MasqueradeCompany, log)
	} else {
		dev, err = startUserspacePlane(ctx, wc, policyOf(cfg, pol), opts.ForwardDial, log)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	perMin := float64(cfg.EnrollPerMinute)
	return &wgEndpoint{cfg: cfg, policy: pol, key: key, store: store, dev: dev, now: now, log: log,
		enrollLimit: keyrate.New(keyrate.Config{Rate: perMin / 60, Burst: perMin, Now: now}),
		devices:     newDeviceAuth(store, now)}, nil
}

func (e *wgEndpoint) close() {
	e.dev.close()
	_ = e.store.Close()
}

func (e *wgEndpoint) count(result string) {
	if e.metrics != nil {
		e.metrics.enrollments.WithLabelValues(result).Inc()
	}
}

// endSessions ends every session of a, once its peer is gone: the data
// plane's state (netstack endpoints and forwarded flows, or conntrack
// entries) and the connections of the gateway's own services.
func (e *wgEndpoint) endSessions(a netip.Addr) int {
	n, err := e.dev.endSessions(a)
	if err != nil {
		e.log.Error("ending a revoked peer's sessions", "address", a, "err", err)
	}
	for _, g := range e.services {
		n += g.closeFrom(a)
	}
	return n
}

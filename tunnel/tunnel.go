package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Tunnel is a WireGuard tunnel engine. The contract, for every engine:
//
//   - Up configures the device, routes, DNS and (if asked) the kill switch,
//     and returns once packets can flow to the peer. It does not wait for
//     a handshake: Status says when one completes. Up on a tunnel that is
//     already up is an error. If Up fails, it has undone everything it did,
//     except a fail-closed kill switch, which stays until Down so a failed
//     connect leaks nothing.
//   - Down undoes everything Up did, in reverse order, restores DNS exactly,
//     and removes the kill switch. It is idempotent and safe after a failed
//     Up or with Up never called.
//   - Status is safe from any goroutine at any time and never blocks on
//     the network.
//   - Nothing an engine logs or returns contains a private or preshared
//     key.
type Tunnel interface {
	Up(ctx context.Context) error
	Down(ctx context.Context) error
	Status() Status
}

// Options configure an engine.
type Options struct {
	// Config holds keys, addresses and peers, as in a wg-quick file.
	Config *Config
	// Plan holds routes, DNS and MTU (see Compute). Nil means ModeConfig
	// on Config's AllowedIPs, as wg-quick would.
	Plan *Plan
	// Probe is an address inside the tunnel that answers ICMP echo,
	// usually the gateway's tunnel address. When set, the engine pings it
	// every ProbeInterval and forces a fresh handshake when it stops
	// answering, instead of waiting out WireGuard's passive timers.
	Probe         netip.Addr
	ProbeInterval time.Duration // 0: DefaultProbeInterval
	// AnswerProbes makes the endpoint answer netdiag's UDP reachability
	// probes on its WireGuard port (internal/wgprobe); gateways set it.
	AnswerProbes bool
	Logger       *slog.Logger
	// Now is the clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// DefaultProbeInterval is how often the active check pings through the
// tunnel. One second keeps recovery near one WireGuard retry (5 s) at a
// cost of ~100 bytes per second.
const DefaultProbeInterval = time.Second

// Health is the tunnel's derived state.
type Health string

const (
	// HealthConnecting: up, no handshake yet, and WireGuard is still
	// trying (less than GiveUpAfter since Up).
	HealthConnecting Health = "connecting"
	// HealthUp: a handshake within RejectAfter and the peer answers.
	HealthUp Health = "up"
	// HealthStalled: data sent but nothing received for StallAfter.
	HealthStalled Health = "stalled"
	// HealthDown: no handshake within RejectAfter, or WireGuard gave up
	// after GiveUpAfter of attempts, or the tunnel is not up.
	HealthDown Health = "down"
)

// Health thresholds, from the WireGuard whitepaper's timers (section 6.1)
// as wireguard-go implements them (device/constants.go).
const (
	// StallAfter: Keepalive-Timeout (10 s) + Rekey-Timeout (5 s), when
	// WireGuard itself concludes the peer stopped answering.
	StallAfter = 15 * time.Second
	// RejectAfter: Reject-After-Time; no session key outlives it.
	RejectAfter = 180 * time.Second
	// GiveUpAfter: Rekey-Attempt-Time; wireguard-go stops retrying.
	GiveUpAfter = 90 * time.Second
)

// Status is a snapshot of a tunnel.
type Status struct {
	Engine    string    `json:"engine"` // "tun", "userspace"
	Interface string    `json:"interface,omitempty"`
	Health    Health    `json:"health"`
	Reason    string    `json:"reason,omitempty"`
	UpSince   time.Time `json:"up_since,omitzero"`
	// LastHandshake is the most recent completed handshake; zero if none.
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
	Endpoint      string    `json:"endpoint,omitempty"`
	// HandshakeAttempts counts initiations sent since the last response.
	HandshakeAttempts int `json:"handshake_attempts"`
	// ForcedHandshakes counts the active check's interventions.
	ForcedHandshakes int           `json:"forced_handshakes"`
	LastProbeRTT     time.Duration `json:"last_probe_rtt_ns,omitempty"`
	FailClosed       bool          `json:"fail_closed"`
	Plan             *Plan         `json:"plan,omitempty"`
}

func (o *Options) validate() error {
	if o.Config == nil {
		return fmt.Errorf("tunnel: no config")
	}
	if o.Config.Interface.PrivateKey.IsZero() {
		return fmt.Errorf("tunnel: the config has no private key")
	}
	if len(o.Config.Interface.Addresses) == 0 {
		return fmt.Errorf("tunnel: the config has no Address")
	}
	if o.Plan == nil {
		var routes []netip.Prefix
		for _, p := range o.Config.Peers {
			routes = append(routes, p.AllowedIPs...)
		}
		plan, err := Compute(Policy{Mode: ModeConfig, ConfigRoutes: routes, CompanyDNS: o.Config.Interface.DNS,
			SearchDomains: o.Config.Interface.SearchDomains, MTU: o.Config.Interface.MTU})
		if err != nil {
			return err
		}
		o.Plan = plan
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	return nil
}

// DefaultInterface is the TUN engine's interface name, as wg-quick
// would choose one; a listing of uplinks leaves it out everywhere.
const DefaultInterface = "tether0"

package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/tunnel"
)

// Data plane modes (wireguard.mode).
const (
	// ModeUserspace is wireguard-go on gVisor's netstack: any OS, no root.
	// The gateway's services listen inside the netstack, and peers' TCP
	// and UDP to allowed destinations leave through the host's sockets.
	ModeUserspace = "userspace"
	// ModeTUN is wireguard-go on a kernel TUN device (Linux): the kernel
	// forwards, and an nftables table of the gateway's own masquerades.
	ModeTUN = "tun"
)

// dataPlane carries peers' packets. Both modes manage peers the same way;
// they differ in where packets go and in how the gateway's own services
// listen on its tunnel address.
type dataPlane interface {
	SetPeer(ctx context.Context, p tunnel.Peer) error
	// RemovePeer drops the peer's keys and sessions at once: its next
	// packet is ignored.
	RemovePeer(pk tunnel.PublicKey) error
	// endSessions ends what the data plane still holds for a, once its
	// peer is removed, and returns how many sessions that was: nothing
	// queued or tracked for the address may reach a later peer given it.
	endSessions(a netip.Addr) (int, error)
	PeerStats() ([]tunnel.PeerStats, error)
	ListenPort() uint16
	// listenTCP and listenUDP open sockets on the gateway's tunnel address.
	listenTCP(ap netip.AddrPort) (net.Listener, error)
	listenUDP(ap netip.AddrPort) (net.PacketConn, error)
	// forwardStats counts what the data plane relayed for peers.
	forwardStats() tunnel.ForwardStats
	// close tears down everything the data plane set up.
	close()
}

// userspacePlane is the userspace data plane.
type userspacePlane struct{ *tunnel.Userspace }

func (u userspacePlane) listenTCP(ap netip.AddrPort) (net.Listener, error) {
	return u.Net().ListenTCPAddrPort(ap)
}

func (u userspacePlane) listenUDP(ap netip.AddrPort) (net.PacketConn, error) {
	return u.Net().ListenUDPAddrPort(ap)
}

func (u userspacePlane) forwardStats() tunnel.ForwardStats { return u.ForwardStats() }

func (u userspacePlane) endSessions(a netip.Addr) (int, error) {
	return u.EndSessions(netip.PrefixFrom(a, a.BitLen()))
}

func (u userspacePlane) close() { _ = u.Down(context.Background()) }

// forwardPolicy is what peers may reach through the gateway, shared by
// both data planes: the company prefixes (policy.always_tunnel's among
// them, which clients route through the tunnel in every mode), the
// internet when full tunnels may use it, never the pool (peers do not
// reach each other).
type forwardPolicy struct {
	pool     netip.Prefix
	gateway  netip.Addr
	company  []netip.Prefix
	internet bool
}

func policyOf(cfg WireGuardConfig, pol gwapi.Policy) forwardPolicy {
	company := slices.Clone(cfg.CompanyPrefixes)
	for _, p := range pol.AlwaysTunnel {
		if !slices.Contains(company, p) {
			company = append(company, p)
		}
	}
	return forwardPolicy{pool: cfg.Address.Masked(), gateway: cfg.Address.Addr(), company: company, internet: cfg.internet(pol)}
}

// forward is what the userspace subnet router relays: the company
// prefixes, or with internet forwarding everything but the host's own
// networks; never the pool or the gateway's own address.
func (pol forwardPolicy) forward() *tunnel.Forward {
	fwd := &tunnel.Forward{Allow: pol.company, Deny: []netip.Prefix{pol.pool, netip.PrefixFrom(pol.gateway, pol.gateway.BitLen())}}
	if pol.internet {
		fwd.Allow = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		fwd.Deny = append(fwd.Deny, nonGlobal...)
	}
	return fwd
}

// startUserspacePlane brings the userspace data plane up with wc's peers.
func startUserspacePlane(ctx context.Context, wc *tunnel.Config, pol forwardPolicy, dial func(ctx context.Context, network, addr string) (net.Conn, error), log *slog.Logger) (dataPlane, error) {
	fwd := pol.forward()
	fwd.Logger, fwd.Dial = log, dial
	dev, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: tunnel.Options{Config: wc, Logger: log, AnswerProbes: true}, Forward: fwd})
	if err != nil {
		return nil, err
	}
	if err := dev.Up(ctx); err != nil {
		return nil, fmt.Errorf("userspace data plane: %w", err)
	}
	return userspacePlane{dev}, nil
}

// nonGlobal are destinations a full-tunnel peer never reaches through the
// userspace gateway's host sockets: the host itself and link-local
// neighbours, which a TUN gateway's forwarding would not reach either.
var nonGlobal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::/128"), // unspecified: a dial to it reaches the host's own sockets
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

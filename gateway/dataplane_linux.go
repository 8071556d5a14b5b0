package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tetherwfh/tether/tunnel"
)

// ipForwardSysctl is the kernel's IPv4 forwarding switch.
const ipForwardSysctl = "/proc/sys/net/ipv4/ip_forward"

// tunPlane is the TUN data plane: the kernel forwards between the tunnel
// interface and the others, and natRules decide what may pass.
type tunPlane struct {
	*tunnel.TUN
	log *slog.Logger
	// restoreForward puts ip_forward back when the gateway turned it on.
	restoreForward bool
}

func startTUNPlane(ctx context.Context, wc *tunnel.Config, iface string, pol forwardPolicy, masqCompany bool, log *slog.Logger) (dataPlane, error) {
	// No routes and no DNS: the interface's own prefix covers the pool,
	// and clients' routes are theirs to manage.
	dev, err := tunnel.NewTUN(tunnel.TUNOptions{Options: tunnel.Options{Config: wc, Logger: log, AnswerProbes: true,
		Plan: &tunnel.Plan{Mode: tunnel.ModeConfig, MTU: tunnel.DefaultMTU}}, Name: iface})
	if err != nil {
		return nil, err
	}
	p := &tunPlane{TUN: dev, log: log}
	if err := nftRun(ctx, natRules{iface: iface, pol: pol, masqCompany: masqCompany}.ruleset()); err != nil {
		return nil, err
	}
	if err := dev.Up(ctx); err != nil {
		_ = nftRun(context.WithoutCancel(ctx), removeRuleset())
		return nil, fmt.Errorf("TUN data plane: %w", err)
	}
	was, err := os.ReadFile(ipForwardSysctl)
	if err == nil && strings.TrimSpace(string(was)) == "0" {
		err = os.WriteFile(ipForwardSysctl, []byte("1"), 0o644)
		p.restoreForward = err == nil
		if err == nil {
			log.Info("turned IPv4 forwarding on; it goes off again at exit")
		}
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("TUN data plane: enabling IPv4 forwarding: %w", err)
	}
	return p, nil
}

func (p *tunPlane) listenTCP(ap netip.AddrPort) (net.Listener, error) {
	return net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
}

func (p *tunPlane) listenUDP(ap netip.AddrPort) (net.PacketConn, error) {
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
}

// endSessions deletes the kernel's connection tracking entries of a, in
// both directions. The table lets only tracked replies into the tunnel,
// so once they are gone a company server still answering the revoked
// peer's flow is dropped at the gateway instead of reaching the next
// peer with that address. (The gateway's own services' sockets are
// closed by their listeners' guards.)
func (p *tunPlane) endSessions(a netip.Addr) (int, error) {
	family := netlink.InetFamily(unix.AF_INET)
	if a.Is6() {
		family = unix.AF_INET6
	}
	total := uint(0)
	var errs []error
	for _, dir := range []netlink.ConntrackFilterType{netlink.ConntrackOrigSrcIP, netlink.ConntrackOrigDstIP} {
		f := &netlink.ConntrackFilter{}
		if err := f.AddIP(dir, net.IP(a.AsSlice())); err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := netlink.ConntrackDeleteFilter(netlink.ConntrackTable, family, f)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("conntrack: %w", err))
		}
	}
	return int(total), errors.Join(errs...)
}

// forwardStats is zero: the kernel forwards, and nft's counters in the
// gateway's table hold the figures.
func (p *tunPlane) forwardStats() tunnel.ForwardStats { return tunnel.ForwardStats{} }

func (p *tunPlane) close() {
	ctx := context.Background()
	_ = p.Down(ctx)
	if err := nftRun(ctx, removeRuleset()); err != nil {
		p.log.Error("removing the gateway's nftables table", "table", NATTable, "err", err)
	}
	if p.restoreForward {
		if err := os.WriteFile(ipForwardSysctl, []byte("0"), 0o644); err != nil {
			p.log.Error("turning IPv4 forwarding off again", "err", err)
		}
	}
}

// nftRun feeds a ruleset to nft(8), as wg-quick does.
func nftRun(ctx context.Context, ruleset string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("the tun data plane needs nft(8): install nftables, or use wireguard.mode: userspace")
	}
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
)

// Defaults for the TUN engine, as wg-quick chooses them.
const (
	// DefaultFwMark marks WireGuard's own UDP so it skips the tunnel's
	// routing table: wg-quick uses the port number, 51820 (0xca6c).
	DefaultFwMark = 0xca6c
	DefaultTable  = 0xca6c
	// rulePriority sits before the main table's rule (32766).
	rulePriority = 32700
)

// TUNOptions configure the TUN engine.
type TUNOptions struct {
	Options
	Name   string // interface name; DefaultInterface if empty
	FwMark uint32 // DefaultFwMark if 0
	Table  int    // DefaultTable if 0
	// FailClosed installs the kill switch before the tunnel comes up and
	// keeps it through reconnects, until Down.
	FailClosed bool
	// AllowLAN lists the LAN prefixes the kill switch lets through; the
	// plan's "lan" bypasses are added automatically.
	AllowLAN []netip.Prefix
	// DNS manages the host resolver; nil leaves DNS alone.
	DNS DNSManager
}

// TUN is wireguard-go on a kernel TUN device, with routes in a table of
// its own reached by a policy rule for everything not carrying the fwmark
// (wg-quick's scheme). The endpoint never loops: WireGuard's packets
// carry the mark and use the main table.
type TUN struct {
	core wgCore
	to   TUNOptions

	mu        sync.Mutex
	up        bool
	rules     []*netlink.Rule
	link      netlink.Link
	ks        *KillSwitch
	dnsActive bool
}

var _ Tunnel = (*TUN)(nil)

// NewTUN checks the options and returns an engine that is down.
func NewTUN(o TUNOptions) (*TUN, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = DefaultInterface
	}
	if len(o.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tunnel: interface name %q is longer than %d bytes", o.Name, unix.IFNAMSIZ-1)
	}
	if o.FwMark == 0 {
		o.FwMark = DefaultFwMark
	}
	if o.Table == 0 {
		o.Table = DefaultTable
	}
	t := &TUN{to: o}
	t.core = wgCore{opts: o.Options, engine: "tun", log: o.Logger.With("engine", "tun", "iface", o.Name), iface: o.Name, fwmark: o.FwMark}
	return t, nil
}

// Up brings the tunnel up: kill switch (if fail-closed), device, address,
// routes, policy rules, DNS, then the health monitor.
func (t *TUN) Up(ctx context.Context) (err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.up {
		return errors.New("tunnel: already up")
	}
	plan := t.to.Plan
	var endpoints []netip.AddrPort
	for i, p := range t.to.Config.Peers {
		if p.Endpoint == "" {
			continue
		}
		ap, err := ResolveEndpoint(ctx, p.Endpoint)
		if err != nil {
			return fmt.Errorf("tunnel: peer %d: %w", i+1, err)
		}
		endpoints = append(endpoints, ap)
	}
	if t.to.FailClosed {
		t.ks = t.killSwitch(endpoints)
		if err := t.ks.Install(ctx); err != nil {
			return err
		}
		t.core.log.Info("kill switch installed", "endpoints", len(t.ks.Endpoints), "lan", len(t.ks.AllowLAN))
	}
	defer func() {
		if err != nil {
			t.teardown(context.WithoutCancel(ctx), true)
		}
	}()
	tdev, err := tun.CreateTUN(t.to.Name, plan.MTU)
	if err != nil {
		return fmt.Errorf("tunnel: creating TUN %s: %w", t.to.Name, err)
	}
	if err := t.core.startDevice(ctx, tdev, conn.NewDefaultBind()); err != nil {
		tdev.Close()
		return err
	}
	t.up = true
	link, err := netlink.LinkByName(t.to.Name)
	if err != nil {
		return fmt.Errorf("tunnel: finding %s: %w", t.to.Name, err)
	}
	t.link = link
	for _, a := range t.to.Config.Interface.Addresses {
		addr := &netlink.Addr{IPNet: prefixToIPNet(a)}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("tunnel: adding address %s: %w", a, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tunnel: setting %s up: %w", t.to.Name, err)
	}
	if err := t.routes(plan); err != nil {
		return err
	}
	if t.to.DNS != nil && len(plan.DNS) > 0 {
		if err := t.to.DNS.Apply(ctx, t.to.Name, plan.DNS, plan.SearchDomains, plan.Mode == ModeFull); err != nil {
			return err
		}
		t.dnsActive = true
	}
	t.core.startMonitor(t.ping)
	t.core.log.Info("tunnel up", "mode", plan.Mode, "routes", len(plan.Routes), "fail_closed", t.to.FailClosed)
	return nil
}

// killSwitch is the kill switch Up installs: the tunnel's device, its
// marked UDP, the peers' endpoints and the LAN where the plan allows it.
func (t *TUN) killSwitch(endpoints []netip.AddrPort) *KillSwitch {
	allow := append([]netip.Prefix(nil), t.to.AllowLAN...)
	for _, b := range t.to.Plan.Bypass {
		if b.Why == "lan" {
			allow = append(allow, b.Prefix)
		}
	}
	return &KillSwitch{Iface: t.to.Name, FwMark: t.to.FwMark, Endpoints: endpoints, AllowLAN: allow}
}

// Block installs only the kill switch Up would, for a tunnel that is not
// up: nothing leaves the host but what the tunnel would carry, until a
// fail-closed Up replaces the rules (one nft transaction, no gap) or
// RemoveKillSwitch drops them. A daemon holds it while the tunnel is down
// and the kill switch is required. Endpoints must be addresses: nothing
// resolves a name behind a kill switch.
func (t *TUN) Block(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.up {
		return errors.New("tunnel: Block on a tunnel that is up")
	}
	var endpoints []netip.AddrPort
	for i, p := range t.to.Config.Peers {
		if p.Endpoint == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(p.Endpoint)
		if err != nil {
			return fmt.Errorf("tunnel: peer %d: the kill switch needs an address, not %q: %w", i+1, p.Endpoint, err)
		}
		endpoints = append(endpoints, ap)
	}
	ks := t.killSwitch(endpoints)
	if err := ks.Install(ctx); err != nil {
		return err
	}
	t.core.log.Info("kill switch holds with the tunnel down", "endpoints", len(endpoints), "lan", len(ks.AllowLAN))
	return nil
}

// Hold takes the tunnel down as Down does but leaves its kill switch, if
// any, in place: see Block. Without a kill switch it is Down.
func (t *TUN) Hold(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.teardown(ctx, true)
	t.ks = nil // the rules stay; this tunnel no longer owns them
	return err
}

// routes installs the plan's routes in the tunnel's table and the rules
// that send unmarked traffic there. An IPv6 route on a host without IPv6
// is skipped with a warning; the kill switch still stops v6 leaks.
func (t *TUN) routes(plan *Plan) error {
	fams := map[int]bool{}
	for _, r := range plan.Routes {
		route := &netlink.Route{LinkIndex: t.link.Attrs().Index, Dst: prefixToIPNet(r), Table: t.to.Table, Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(route); err != nil {
			if r.Addr().Is6() && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP)) {
				t.core.log.Warn("skipping an IPv6 route: IPv6 is off on this host", "route", r)
				continue
			}
			return fmt.Errorf("tunnel: adding route %s: %w", r, err)
		}
		if r.Addr().Is4() {
			fams[unix.AF_INET] = true
		} else {
			fams[unix.AF_INET6] = true
		}
	}
	if fams[unix.AF_INET] && t.to.FwMark != 0 {
		// Replies to marked packets must pass reverse-path filtering, as
		// wg-quick arranges.
		_ = os.WriteFile("/proc/sys/net/ipv4/conf/all/src_valid_mark", []byte("1"), 0o644)
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		if !fams[fam] {
			continue
		}
		rule := netlink.NewRule()
		rule.Family = fam
		rule.Table = t.to.Table
		rule.Mark = int(t.to.FwMark)
		rule.Invert = true
		rule.Priority = rulePriority
		if err := netlink.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("tunnel: adding the policy rule: %w", err)
		}
		t.rules = append(t.rules, rule)
	}
	return nil
}

// Down undoes Up in reverse order. Idempotent.
func (t *TUN) Down(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.teardown(ctx, false)
}

// teardown undoes everything; keepKillSwitch leaves the kill switch in
// place after a failed Up, so a failed connect leaks nothing.
func (t *TUN) teardown(ctx context.Context, keepKillSwitch bool) error {
	var errs []error
	if t.dnsActive {
		if err := t.to.DNS.Restore(ctx); err != nil {
			errs = append(errs, err)
		}
		t.dnsActive = false
	}
	for _, r := range t.rules {
		if err := netlink.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("tunnel: removing the policy rule: %w", err))
		}
	}
	t.rules = nil
	// Closing the device removes the TUN link and with it its addresses
	// and routes.
	t.core.closeDevice()
	t.link = nil
	if t.up {
		t.core.log.Info("tunnel down")
	}
	t.up = false
	if t.ks != nil && !keepKillSwitch {
		if err := t.ks.Remove(ctx); err != nil {
			errs = append(errs, err)
		}
		t.ks = nil
	}
	return errors.Join(errs...)
}

// Status reports health and counters.
func (t *TUN) Status() Status {
	st := t.core.status()
	t.mu.Lock()
	st.FailClosed = t.ks != nil
	t.mu.Unlock()
	return st
}

// ping sends an ICMP echo to dst, which the routes take through the tunnel.
func (t *TUN) ping(ctx context.Context, dst netip.Addr) (time.Duration, error) {
	network := "ip4:icmp"
	if dst.Is6() {
		network = "ip6:ipv6-icmp"
	}
	c, err := net.Dial(network, dst.String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return echo(ctx, c, dst, true)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ListenPort is the UDP port WireGuard listens on; 0 while down.
func (t *TUN) ListenPort() uint16 { return t.core.listenPort() }

// SetPeer adds or updates one peer on the live device, leaving the others
// alone: a gateway enrolls peers while the rest keep talking.
func (t *TUN) SetPeer(ctx context.Context, p Peer) error { return t.core.setPeer(ctx, p) }

// RemovePeer removes a peer from the live device; its sessions end at once.
func (t *TUN) RemovePeer(pk PublicKey) error { return t.core.removePeer(pk) }

// PeerStats reads every peer's handshake time and counters.
func (t *TUN) PeerStats() ([]PeerStats, error) { return t.core.peerStats() }

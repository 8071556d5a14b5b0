package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The lab's addressing. The "public" side uses 198.18.0.0/15, which RFC 2544
// reserves for benchmarking networks, so no lab address can be confused with
// a real host; home and corp use private ranges, as real ones do. Every
// address lives only inside the lab's own namespaces.
var (
	HomeAddr       = netip.MustParseAddr("192.168.77.10") // the client
	NeighborAddr   = netip.MustParseAddr("192.168.77.20") // someone else's computer on the home LAN
	HomeRouterAddr = netip.MustParseAddr("192.168.77.1")  // the ISP box's LAN side: default gateway and resolver
	ISPWANAddr     = netip.MustParseAddr("198.18.1.2")    // the home's public address (the ISP router NATs)
	ISPPeerAddr    = netip.MustParseAddr("198.18.1.1")    // internet's side of the ISP link
	GatewayAddr    = netip.MustParseAddr("198.18.2.2")    // the company gateway's public address
	GatewayPeer    = netip.MustParseAddr("198.18.2.1")    // internet's side of the gateway link
	WebAddr        = netip.MustParseAddr("198.18.0.80")   // internet web server
	DNSAddr        = netip.MustParseAddr("198.18.0.53")   // internet upstream DNS server
	SpeedAddr      = netip.MustParseAddr("198.18.0.10")   // internet iperf3 and bulk-load server
	AssistAddr     = netip.MustParseAddr("198.18.0.99")   // where a hijacking resolver points NXDOMAINs
	CorpGWAddr     = netip.MustParseAddr("10.77.0.1")     // the gateway's corp side
	CorpHostAddr   = netip.MustParseAddr("10.77.0.10")    // a company server
	CorpPrefix     = netip.MustParsePrefix("10.77.0.0/24")
	HomePrefix     = netip.MustParsePrefix("192.168.77.0/24")
	TunnelPrefix   = netip.MustParsePrefix("10.99.0.0/24") // what the gateway masquerades in full mode
	// A phone's hotspot on the home computer's USB (Config.Phone), in the
	// iPhone's own addressing, with its own way to the internet.
	PhoneHomeAddr = netip.MustParseAddr("172.20.10.2") // the client's usb0
	PhoneLANAddr  = netip.MustParseAddr("172.20.10.1") // the phone: usb0's gateway
	PhoneWANAddr  = netip.MustParseAddr("198.18.3.2")  // the phone's (carrier's) public address
	PhonePeerAddr = netip.MustParseAddr("198.18.3.1")  // internet's side of the carrier link
)

// PhoneMetric is the metric of the home's default route over the phone:
// above the LAN's, as NetworkManager ranks a tethered phone below
// Ethernet, so traffic keeps the home line unless a socket is bound.
const PhoneMetric = 600

// Ports of the lab's own services.
const (
	WebPort    = 80
	PortalPort = 8080 // the captive portal's server on the ISP router
	LoadPort   = 9000 // bulk source/sink for background load
)

// Interface names inside the namespaces. Each name only has to be unique
// within its namespace, so they are fixed and readable.
const (
	IfHome       = "eth0"   // home: uplink to the ISP box
	IfNeighbor   = "eth0"   // neighbor: its uplink to the same box
	IfISPHome    = "home0"  // isp: the LAN's bridge, shaped for the download direction
	IfISPPortA   = "lan1"   // isp: the bridge's port to home
	IfISPPortB   = "lan2"   // isp: the bridge's port to the neighbor
	IfISPWAN     = "wan0"   // isp: uplink, shaped for the upload direction
	IfNetISP     = "isp0"   // internet: toward isp
	IfNetGateway = "gw0"    // internet: toward gateway
	IfGatewayWAN = "wan0"   // gateway: toward internet
	IfGatewayLAN = "corp0"  // gateway: toward corp
	IfCorp       = "eth0"   // corp: uplink to the gateway
	IfHomePhone  = "usb0"   // home: the phone tethered over USB (Config.Phone)
	IfPhoneLAN   = "usb0"   // phone: toward home, shaped for download
	IfPhoneWAN   = "cell0"  // phone: toward internet, shaped for upload
	IfNetPhone   = "phone0" // internet: toward the phone
)

// Timeouts and bounds.
const (
	// setupTimeout bounds building a lab; it takes well under a second here.
	setupTimeout = 30 * time.Second
	// maxLifetime bounds a lab left running by `make lab`, and every
	// process it starts, so nothing outlives a forgotten terminal for long.
	maxLifetime = 2 * time.Hour
	// lockWait bounds the wait for other processes' labs (see lock.go):
	// the line is first come first served, so this is a few of the
	// longest lab tests (minutes each), and shorter than go test's
	// 30-minute timeout.
	lockWait = 20 * time.Minute
	// namePrefix starts every namespace name, so stale labs can be found.
	namePrefix = "tlab-"
)

// Config configures a lab.
type Config struct {
	Profile Profile
	// Logger receives setup steps and service logs; nil discards them.
	Logger *slog.Logger
	// NoGatewayNAT leaves the gateway namespace without the lab's
	// masquerade for the tunnel prefix, for tests of a gateway that
	// installs its own.
	NoGatewayNAT bool
	// Phone, when set, gives the home computer a second uplink: a phone
	// tethered over USB (usb0), with its own NAT and this shaping, and a
	// default route of PhoneMetric.
	Phone *Uplink2
}

// Uplink2 shapes a second uplink as a Profile shapes the home line.
type Uplink2 struct {
	Down, Up Link
}

// Lab is a running network: home ─ isp ─ internet ─ gateway ─ corp.
//
//	home (client) ──eth0/home0── isp (NAT, tbf both ways) ──wan0/isp0── internet (DNS, web, speed)
//	                                                                        │ gw0/wan0
//	                                                        corp ──eth0/corp0── gateway (NAT for tunnel)
//
// The zero value is not usable; create labs with New or Start, and always
// Close them.
type Lab struct {
	Profile Profile
	ID      string

	Home, ISP, Internet, Gateway, Corp *Namespace
	// Neighbor is another computer on the home's LAN, behind the same
	// ISP box and its shaping: whose traffic is not the client's.
	Neighbor *Namespace
	// Phone is the second uplink's router (Config.Phone); nil without.
	Phone *Namespace
	phone *Uplink2

	logger       *slog.Logger
	noGatewayNAT bool
	ctx          context.Context
	cancel       context.CancelFunc

	mu        sync.Mutex
	procs     []*exec.Cmd
	closers   []io.Closer
	closed    bool
	closeErr  error
	closeOnce sync.Once
	wg        sync.WaitGroup

	// dns is the internet's authoritative upstream; tests add records.
	dns *dnsServer
}

var labSeq atomic.Int64

// Start builds a lab for cfg.Profile. On error, everything it built is torn
// down again. Callers must Close the lab.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.Profile.Validate(); err != nil {
		return nil, err
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	lockCtx, lockCancel := context.WithTimeout(ctx, lockWait)
	err := acquireHost(lockCtx)
	lockCancel()
	if err != nil {
		return nil, err
	}
	sweepStale(cfg.Logger)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	id := fmt.Sprintf("%d-%d", os.Getpid(), labSeq.Add(1))
	lctx, cancel := context.WithTimeout(context.Background(), maxLifetime)
	l := &Lab{Profile: cfg.Profile, ID: id, logger: logger.With("lab", id), ctx: lctx, cancel: cancel, noGatewayNAT: cfg.NoGatewayNAT, phone: cfg.Phone}
	mk := func(role string) *Namespace {
		return &Namespace{Name: namePrefix + id + "-" + role, Role: role, lab: l}
	}
	l.Home, l.ISP, l.Internet, l.Gateway, l.Corp = mk("home"), mk("isp"), mk("internet"), mk("gateway"), mk("corp")
	l.Neighbor = mk("neighbor")
	if cfg.Phone != nil {
		l.Phone = mk("phone")
	}

	sctx, scancel := context.WithTimeout(ctx, setupTimeout)
	defer scancel()
	if err := l.build(sctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Namespaces lists the lab's hosts in topology order.
func (l *Lab) Namespaces() []*Namespace {
	ns := []*Namespace{l.Home, l.Neighbor, l.ISP, l.Internet, l.Gateway, l.Corp}
	if l.Phone != nil {
		ns = append(ns, l.Phone)
	}
	return ns
}

func (l *Lab) build(ctx context.Context) error {
	for _, ns := range l.Namespaces() {
		if err := run(ctx, "ip", "netns", "add", ns.Name); err != nil {
			return err
		}
		if err := ns.ip(ctx, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	type veth struct {
		a     *Namespace
		aName string
		aAddr string
		b     *Namespace
		bName string
		bAddr string
		mtu   int
	}
	// The home's LAN is a bridge on the ISP box, as a home router's
	// switch is: the client and the neighbor on its ports, the box's LAN
	// address on the bridge, where the download is shaped.
	if err := l.ISP.ip(ctx, "link", "add", IfISPHome, "type", "bridge"); err != nil {
		return err
	}
	for _, args := range [][]string{{"addr", "add", HomeRouterAddr.String() + "/24", "dev", IfISPHome}, {"link", "set", IfISPHome, "up"}} {
		if err := l.ISP.ip(ctx, args...); err != nil {
			return err
		}
	}
	links := []veth{
		{l.Home, IfHome, HomeAddr.String() + "/24", l.ISP, IfISPPortA, "", 0},
		{l.Neighbor, IfNeighbor, NeighborAddr.String() + "/24", l.ISP, IfISPPortB, "", 0},
		{l.ISP, IfISPWAN, ISPWANAddr.String() + "/24", l.Internet, IfNetISP, ISPPeerAddr.String() + "/24", l.Profile.MTU},
		{l.Gateway, IfGatewayWAN, GatewayAddr.String() + "/24", l.Internet, IfNetGateway, GatewayPeer.String() + "/24", 0},
		{l.Corp, IfCorp, CorpHostAddr.String() + "/24", l.Gateway, IfGatewayLAN, CorpGWAddr.String() + "/24", 0},
	}
	if l.Phone != nil {
		links = append(links,
			veth{l.Home, IfHomePhone, PhoneHomeAddr.String() + "/28", l.Phone, IfPhoneLAN, PhoneLANAddr.String() + "/28", 0},
			veth{l.Phone, IfPhoneWAN, PhoneWANAddr.String() + "/24", l.Internet, IfNetPhone, PhonePeerAddr.String() + "/24", 0})
	}
	for _, v := range links {
		if err := run(ctx, "ip", "link", "add", v.aName, "netns", v.a.Name, "type", "veth", "peer", "name", v.bName, "netns", v.b.Name); err != nil {
			return err
		}
		for _, end := range []struct {
			ns         *Namespace
			name, addr string
		}{{v.a, v.aName, v.aAddr}, {v.b, v.bName, v.bAddr}} {
			if v.mtu != 0 {
				if err := end.ns.ip(ctx, "link", "set", end.name, "mtu", strconv.Itoa(v.mtu)); err != nil {
					return err
				}
			}
			if end.addr == "" { // a bridge port
				if err := end.ns.ip(ctx, "link", "set", end.name, "master", IfISPHome); err != nil {
					return err
				}
			} else if err := end.ns.ip(ctx, "addr", "add", end.addr, "dev", end.name); err != nil {
				return err
			}
			if err := end.ns.ip(ctx, "link", "set", end.name, "up"); err != nil {
				return err
			}
		}
	}
	for _, a := range []netip.Addr{WebAddr, DNSAddr, SpeedAddr, AssistAddr} {
		if err := l.Internet.ip(ctx, "addr", "add", a.String()+"/32", "dev", "lo"); err != nil {
			return err
		}
	}
	routes := []struct {
		ns   *Namespace
		args []string
	}{
		{l.Home, []string{"default", "via", HomeRouterAddr.String()}},
		{l.Neighbor, []string{"default", "via", HomeRouterAddr.String()}},
		{l.ISP, []string{"default", "via", ISPPeerAddr.String()}},
		{l.Gateway, []string{"default", "via", GatewayPeer.String()}},
		{l.Corp, []string{"default", "via", CorpGWAddr.String()}},
	}
	forwarders := []*Namespace{l.ISP, l.Gateway, l.Internet}
	if l.Phone != nil {
		routes = append(routes,
			struct {
				ns   *Namespace
				args []string
			}{l.Home, []string{"default", "via", PhoneLANAddr.String(), "dev", IfHomePhone, "metric", strconv.Itoa(PhoneMetric)}},
			struct {
				ns   *Namespace
				args []string
			}{l.Phone, []string{"default", "via", PhonePeerAddr.String()}})
		forwarders = append(forwarders, l.Phone)
		// Replies to a socket bound to usb0 come in on usb0, from
		// addresses the main route reaches over eth0: strict reverse
		// path filtering would drop them. Loose is what multi-homed
		// desktops run.
		for _, key := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf." + IfHomePhone + ".rp_filter", "net.ipv4.conf." + IfHome + ".rp_filter"} {
			if err := l.Home.sysctl(ctx, key, "2"); err != nil {
				return err
			}
		}
	}
	for _, r := range routes {
		if err := r.ns.ip(ctx, append([]string{"route", "add"}, r.args...)...); err != nil {
			return err
		}
	}
	for _, ns := range forwarders {
		if err := ns.sysctl(ctx, "net.ipv4.ip_forward", "1"); err != nil {
			return err
		}
	}
	// Home computers and most servers run CUBIC (the Linux, Windows and
	// macOS default); a host default of BBR would keep the bottleneck
	// queues short and hide the bufferbloat the profiles are for.
	allowCongestionControl(l.logger, LabCongestionControl)
	for _, ns := range l.Namespaces() {
		if err := ns.sysctl(ctx, "net.ipv4.tcp_congestion_control", LabCongestionControl); err != nil {
			l.logger.Warn("lab: cannot set TCP congestion control; queues may not fill like a home's", "ns", ns.Role, "err", err)
		}
	}
	if err := l.ISP.nft(ctx, l.ispRuleset()); err != nil {
		return err
	}
	if l.Phone != nil {
		if err := l.Phone.nft(ctx, fmt.Sprintf("table ip tetherlab {\n  chain postrouting { type nat hook postrouting priority srcnat; oifname %q masquerade; }\n}\n", IfPhoneWAN)); err != nil {
			return err
		}
	}
	if !l.noGatewayNAT {
		if err := l.Gateway.nft(ctx, gatewayRuleset()); err != nil {
			return err
		}
	}
	if err := l.shape(ctx); err != nil {
		return err
	}
	if err := l.writeResolvConf(); err != nil {
		return err
	}
	if err := l.startServices(ctx); err != nil {
		return err
	}
	l.logger.Info("lab up", "profile", l.Profile.Name, "namespaces", l.names())
	return nil
}

func (l *Lab) names() string {
	var names []string
	for _, ns := range l.Namespaces() {
		names = append(names, ns.Name)
	}
	return strings.Join(names, " ")
}

// ispRuleset is the ISP box: NAT for the home, and the profile's filters.
func (l *Lab) ispRuleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip tetherlab {\n")
	fmt.Fprintf(&b, "  chain postrouting { type nat hook postrouting priority srcnat; oifname %q masquerade; }\n", IfISPWAN)
	fmt.Fprintf(&b, "  chain prerouting {\n    type nat hook prerouting priority dstnat;\n")
	if l.Profile.CaptivePortal {
		fmt.Fprintf(&b, "    iifname %q tcp dport 80 dnat to %s:%d\n", IfISPHome, HomeRouterAddr, PortalPort)
	}
	if l.Profile.DNSIntercept {
		for _, proto := range []string{"udp", "tcp"} {
			fmt.Fprintf(&b, "    iifname %q %s dport 53 dnat to %s:53\n", IfISPHome, proto, HomeRouterAddr)
		}
	}
	fmt.Fprintf(&b, "  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n")
	for _, p := range l.Profile.BlockUDPPorts {
		fmt.Fprintf(&b, "    iifname %q udp dport %d counter drop\n", IfISPHome, p)
	}
	if l.Profile.CaptivePortal {
		fmt.Fprintf(&b, "    iifname %q counter drop\n", IfISPHome)
	}
	fmt.Fprintf(&b, "  }\n}\n")
	return b.String()
}

// gatewayRuleset masquerades tunnel clients' traffic to the internet, the
// full-tunnel egress; corp sees tunnel addresses unchanged.
func gatewayRuleset() string {
	return fmt.Sprintf(`table ip tetherlab {
  chain postrouting {
    type nat hook postrouting priority srcnat;
    ip saddr %s oifname %q masquerade
  }
}
`, TunnelPrefix, IfGatewayWAN)
}

// LabCongestionControl is the TCP congestion control every lab namespace
// uses.
const LabCongestionControl = "cubic"

// allowCongestionControl adds name to the host's allowed list: a network
// namespace may only default to an algorithm on it (the kernel answers
// EPERM otherwise). Adding one only lets unprivileged sockets choose it too.
func allowCongestionControl(logger *slog.Logger, name string) {
	const path = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	allowed := strings.Fields(string(b))
	if slices.Contains(allowed, name) {
		return
	}
	if err := os.WriteFile(path, []byte(strings.Join(append(allowed, name), " ")), 0o644); err != nil {
		logger.Warn("lab: cannot allow TCP congestion control", "name", name, "err", err)
		return
	}
	logger.Info("lab: allowed TCP congestion control on the host", "name", name)
}

// tbfBurst is the bucket size for a rate: at least one millisecond of
// traffic (the kernel's timer granularity at HZ=1000) and at least a few
// full-size frames, so that the bucket itself never limits the rate.
func tbfBurst(r Rate) int64 {
	b := int64(r) / 8 / 1000
	return max(b, 4*1514)
}

// shape installs tbf on the ISP box, and on the phone when there is one:
// on the LAN side for download, on the WAN side for upload. Shaping on the forwarding router, not on the
// sender, is what lets a standing queue build.
func (l *Lab) shape(ctx context.Context) error {
	type dir struct {
		ns   *Namespace
		dev  string
		link Link
	}
	dirs := []dir{{l.ISP, IfISPHome, l.Profile.Down}, {l.ISP, IfISPWAN, l.Profile.Up}}
	if l.Phone != nil {
		dirs = append(dirs, dir{l.Phone, IfPhoneLAN, l.phone.Down}, dir{l.Phone, IfPhoneWAN, l.phone.Up})
	}
	for _, d := range dirs {
		if d.link.Rate == 0 {
			continue
		}
		args := []string{"qdisc", "replace", "dev", d.dev, "root", "tbf",
			"rate", strconv.FormatInt(int64(d.link.Rate), 10) + "bit",
			"burst", strconv.FormatInt(tbfBurst(d.link.Rate), 10),
			"latency", strconv.FormatInt(d.link.Queue.Microseconds(), 10) + "us"}
		if _, err := d.ns.Run(ctx, "tc", args...); err != nil {
			return err
		}
	}
	return nil
}

// Reshape changes the ISP box's shaping on a running lab.
func (l *Lab) Reshape(ctx context.Context, down, up Link) error {
	l.Profile.Down, l.Profile.Up = down, up
	return l.shape(ctx)
}

// ShapeTunnel puts a bottleneck at the gateway's side on the tunnel
// alone: on the internet router, the WireGuard packets to the gateway's
// UDP port (up) and from it toward the home line (down) go through
// their own tbf, everything else passes unshaped. Measured direct to the
// gateway's API the line is as its profile says; through the tunnel it
// meets this queue, as behind a gateway whose uplink or CPU is saturated.
func (l *Lab) ShapeTunnel(ctx context.Context, port uint16, down, up Link) error {
	for _, d := range []struct {
		dev   string
		match []string
		link  Link
	}{
		{IfNetGateway, []string{"dst", GatewayAddr.String() + "/32", "dport"}, up},
		{IfNetISP, []string{"src", GatewayAddr.String() + "/32", "sport"}, down},
	} {
		if d.link.Rate == 0 {
			continue
		}
		// htb passes everything through class 1:1, as fast as the veth
		// goes; the filter sends the tunnel's packets to 1:10, whose tbf
		// is the bottleneck.
		cmds := [][]string{
			{"qdisc", "replace", "dev", d.dev, "root", "handle", "1:", "htb", "default", "1"},
			{"class", "replace", "dev", d.dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit", "quantum", "60000"},
			{"class", "replace", "dev", d.dev, "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit", "quantum", "60000"},
			{"qdisc", "replace", "dev", d.dev, "parent", "1:10", "handle", "10:", "tbf",
				"rate", strconv.FormatInt(int64(d.link.Rate), 10) + "bit",
				"burst", strconv.FormatInt(tbfBurst(d.link.Rate), 10),
				"latency", strconv.FormatInt(d.link.Queue.Microseconds(), 10) + "us"},
			{"filter", "replace", "dev", d.dev, "parent", "1:", "protocol", "ip", "prio", "1", "handle", "800::800", "u32",
				"match", "ip", d.match[0], d.match[1], "match", "ip", "protocol", "17", "0xff",
				"match", "ip", d.match[2], strconv.Itoa(int(port)), "0xffff", "flowid", "1:10"},
		}
		for _, args := range cmds {
			if _, err := l.Internet.Run(ctx, "tc", args...); err != nil {
				return fmt.Errorf("netlab: shaping the tunnel on %s: %w", d.dev, err)
			}
		}
	}
	return nil
}

// ResolvConf is the path of the home's resolv.conf. Commands started with
// Namespace.Command see it as /etc/resolv.conf (ip netns exec bind-mounts
// it); in-process code must be pointed at this path.
func (l *Lab) ResolvConf() string {
	return filepath.Join("/etc/netns", l.Home.Name, "resolv.conf")
}

func (l *Lab) writeResolvConf() error {
	if err := os.MkdirAll(filepath.Dir(l.ResolvConf()), 0o755); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	content := fmt.Sprintf("# written by the Tether lab %s\nnameserver %s\nsearch home.test\n", l.ID, HomeRouterAddr)
	if err := os.WriteFile(l.ResolvConf(), []byte(content), 0o644); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}

func (l *Lab) startProcess(ns *Namespace, name string, args ...string) (*exec.Cmd, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("netlab: lab is closed")
	}
	cmd := ns.Command(l.ctx, name, args...)
	// Pdeathsig kills the child when the thread that forked it exits, not
	// the process: start it from the spawner's thread, which lives as long
	// as the process, so the child dies with us and not before.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("netlab: start %s in %s: %w", name, ns.Name, err)
	}
	l.procs = append(l.procs, cmd)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.logger.Debug(name, "ns", ns.Role, "out", sc.Text())
		}
	}()
	return cmd, nil
}

// addCloser registers something to close with the lab.
func (l *Lab) addCloser(c io.Closer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, c)
}

// Go runs fn in a goroutine that the lab waits for on Close; fn must return
// once ctx is done.
func (l *Lab) Go(fn func(ctx context.Context)) {
	l.wg.Add(1)
	go func() { defer l.wg.Done(); fn(l.ctx) }()
}

// Context is done when the lab closes or reaches its maximum lifetime.
func (l *Lab) Context() context.Context { return l.ctx }

// Close stops every service and process and deletes the namespaces. It is
// safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		procs, closers := l.procs, l.closers
		l.mu.Unlock()
		l.cancel()
		var errs []error
		for _, c := range closers {
			if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		for _, p := range procs {
			_ = p.Wait()
		}
		l.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		for _, ns := range l.Namespaces() {
			if _, err := os.Stat(filepath.Join(netnsDir, ns.Name)); err != nil {
				continue
			}
			if err := run(ctx, "ip", "netns", "del", ns.Name); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(filepath.Dir(l.ResolvConf())); err != nil {
			errs = append(errs, err)
		}
		l.closeErr = errors.Join(errs...)
		releaseHost()
		l.logger.Info("lab down")
	})
	return l.closeErr
}

// Supported reports why this machine cannot run a lab, or nil.
func Supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: network namespaces need root (run the tests as root, as CI does)", errSkip)
	}
	for _, tool := range []string{"ip", "tc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s is not installed (run `make deps`)", errSkip, tool)
		}
	}
	return nil
}

// sweepStale deletes namespaces left by lab processes that died without
// cleaning up (a killed test binary, say). A name carries its creator's
// pid, and a lab is stale once that process is gone.
func sweepStale(logger *slog.Logger) {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, namePrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(name, namePrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := exec.Command("ip", "netns", "del", name).Run(); err == nil && logger != nil {
			logger.Info("removed stale lab namespace", "name", name)
		}
		_ = os.RemoveAll(filepath.Join("/etc/netns", name))
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var (
	spawnOnce sync.Once
	spawnReq  chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn starts cmd from one OS thread that never exits. Go ends the thread
// of a goroutine that exits while locked (as Namespace.Do's do), and
// Pdeathsig would then kill children forked from it at once.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // for the life of the process
			for r := range spawnReq {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReq <- spawnRequest{cmd, done}
	return <-done
}

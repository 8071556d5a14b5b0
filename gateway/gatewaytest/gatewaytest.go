// Package gatewaytest starts a real Tether gateway in the test's process:
// its HTTPS or HTTP API, its WireGuard endpoint (userspace: no root), the
// filtering resolver with a small block list and a company zone, the
// measurement service and STAMP, all on ephemeral loopback ports, with
// admin and metrics tokens. Tests of any package that talk to a gateway
// use it instead of starting one their own way.
//
// Boundaries: gatewaytest is a test fixture; only test files import it.
// It imports the gateway, its wire packages and tunnel.
package gatewaytest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/gwapi/wgconf"
	"github.com/tetherwfh/tether/gateway/resolver"
	"github.com/tetherwfh/tether/tunnel"
)

// What the fixture's gateway serves.
const (
	// Name is the gateway's name unless a test changes it.
	Name = "gatewaytest"
	// BlockedName is on the block list (category phishing, list
	// "phishing", rule ||phishing.test^ on line 2).
	BlockedName = "login.phishing.test"
	// CompanyName is in the company zone, at the gateway's tunnel address
	// (where its intranet page is served).
	CompanyName = "intranet.corp.test"
	// EnrollPerMinute is the fixture's enrollment limit: every test
	// client enrolls from 127.0.0.1, so it is far above the default; a
	// test of the limit sets its own.
	EnrollPerMinute = 1000
)

// Addresses of the fixture's WireGuard endpoint.
var (
	// TunnelAddress is the gateway's tunnel address; its prefix is the
	// clients' pool.
	TunnelAddress = netip.MustParsePrefix("10.99.0.1/24")
	// CompanyPrefix is the company network split tunnels route.
	CompanyPrefix = netip.MustParsePrefix("10.77.0.0/24")
)

// blockList is the fixture's block list, in domains format.
const blockList = "# gatewaytest's block list\nphishing.test\n*.malware.test\n"

// stopTimeout bounds the gateway's stop at the end of a test: Run returns
// once every service has, in well under a second; a service that outlives
// its socket (and spins a core) fails the test instead of hanging it.
const stopTimeout = 30 * time.Second

// Option changes the fixture's gateway before it starts.
type Option func(*settings)

type settings struct {
	changes []func(*gateway.Config)
	opts    gateway.Options
	tls     bool
}

// WithConfig changes the gateway's configuration (after the fixture's
// defaults, before New). A nil cfg.WireGuard or cfg.DNS turns that part
// off.
//
// The fixture's policy is DefaultConfig's (gwapi.DefaultPolicy()), and
// its diagnostics names are BlockedName and CompanyName; WithPolicy sets
// the policy.
func WithConfig(change func(cfg *gateway.Config)) Option {
	return func(s *settings) { s.changes = append(s.changes, change) }
}

// WithPolicy sets the company's tunnel policy the gateway serves.
func WithPolicy(p gwapi.Policy) Option {
	return WithConfig(func(cfg *gateway.Config) { cfg.Policy = p })
}

// WithOptions sets the gateway's collaborators: a logger, a clock, the
// userspace data plane's ForwardDial. The zero value is the default.
func WithOptions(opts gateway.Options) Option {
	return func(s *settings) { s.opts = opts }
}

// WithTLS serves the API over HTTPS with a fresh self-signed certificate,
// as init sets a gateway up; Gateway.API trusts it by its pin.
func WithTLS() Option {
	return func(s *settings) { s.tls = true }
}

// Gateway is a running gateway. Its fields are for reading.
type Gateway struct {
	// Server is the gateway itself.
	Server *gateway.Server
	// Config is what it runs with; its files are under Dir.
	Config gateway.Config
	// Secrets are its WireGuard key, admin and metrics tokens and
	// certificate (used only WithTLS).
	Secrets gateway.Secrets
	// API is a client of its API with the admin token.
	API *gwapi.Client
	// Dir holds its config's files: secrets, peer store, block list.
	Dir string

	opts     gateway.Options
	stop     func() error
	stopOnce *sync.Once
	tb       testing.TB
}

// New starts a gateway for the test and stops it when the test ends,
// failing the test if Run does not return cleanly in time.
func New(tb testing.TB, opts ...Option) *Gateway {
	tb.Helper()
	var set settings
	for _, o := range opts {
		o(&set)
	}
	dir := tb.TempDir()
	sec, err := gateway.WriteSecrets(dir, []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	list := filepath.Join(dir, "phishing.list")
	if err := os.WriteFile(list, []byte(blockList), 0o644); err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	wgPort := freeUDPPort(tb)
	cfg := gateway.DefaultConfig()
	cfg.Name = Name
	cfg.API.Listen, cfg.Measure.STAMPListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DNS = &resolver.Config{
		Listen:     "127.0.0.1:0",
		Lists:      []resolver.ListConfig{{Name: "phishing", Category: "phishing", Format: "domains", Path: list}},
		LocalZones: []resolver.LocalZone{{Name: "corp.test", Records: []string{"intranet IN A " + TunnelAddress.Addr().String()}}},
	}
	cfg.WireGuard = &gateway.WireGuardConfig{Mode: gateway.ModeUserspace, ListenPort: wgPort, Address: TunnelAddress,
		Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), wgPort).String(), CompanyPrefixes: []netip.Prefix{CompanyPrefix},
		Store: filepath.Join(dir, "peers.db"), EnrollPerMinute: EnrollPerMinute}
	// The filter check's names: what the fixture's resolver blocks and
	// serves.
	cfg.Diagnostics = gateway.DiagnosticsConfig{Canary: BlockedName, ProbeName: CompanyName}
	sec.Apply(&cfg)
	if !set.tls {
		cfg.API.TLSCertFile, cfg.API.TLSKeyFile = "", ""
	}
	for _, change := range set.changes {
		change(&cfg)
	}
	s, err := gateway.New(cfg, set.opts)
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	stop, err := s.Start(context.Background())
	if err != nil {
		tb.Fatalf("gatewaytest: the gateway did not start: %v", err)
	}
	g := &Gateway{Server: s, Config: cfg, Secrets: sec, Dir: dir, opts: set.opts, stop: stop, stopOnce: new(sync.Once), tb: tb}
	tb.Cleanup(func() { g.Stop() })
	if g.API, err = gwapi.New(gwapi.Config{BaseURL: s.URL(), Pin: s.Pin(), AdminToken: sec.AdminToken}); err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	return g
}

// Stop stops the gateway now (a test of what clients do when it goes
// away), failing the test if Run returned an error or did not return
// within 30 s. The test's cleanup calls it; more calls do nothing.
func (g *Gateway) Stop() {
	g.tb.Helper()
	g.stopOnce.Do(func() {
		done := make(chan error, 1)
		go func() { done <- g.stop() }()
		select {
		case err := <-done:
			if err != nil {
				g.tb.Errorf("gatewaytest: the gateway's Run returned %v", err)
			}
		case <-time.After(stopTimeout):
			// The goroutines say what it waits on, even from a CI log.
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			g.tb.Errorf("gatewaytest: the gateway did not stop within %v of its context ending; goroutines:\n%s", stopTimeout, buf)
		}
	})
}

// Restart stops the gateway and starts it again on the same addresses,
// with the same config, secrets and peer store: what an operator's
// `systemctl restart` does to the clients.
func (g *Gateway) Restart(tb testing.TB) {
	tb.Helper()
	cfg := g.Config
	cfg.API.Listen = g.Server.Addr().String()
	if a := g.Server.STAMPAddr(); a != nil {
		cfg.Measure.STAMPListen = a.String()
	}
	if a := g.Server.DNSAddr(); a != nil && cfg.DNS != nil {
		dns := *cfg.DNS
		dns.Listen = a.String()
		cfg.DNS = &dns
	}
	g.Stop()
	s, err := gateway.New(cfg, g.opts)
	if err != nil {
		tb.Fatalf("gatewaytest: restart: %v", err)
	}
	stop, err := s.Start(context.Background())
	if err != nil {
		tb.Fatalf("gatewaytest: restart: the gateway did not start: %v", err)
	}
	g.Server, g.stop, g.stopOnce = s, stop, new(sync.Once)
}

// URL is the API's base URL.
func (g *Gateway) URL() string { return g.Server.URL() }

// Pin is the API certificate's pin, empty without WithTLS.
func (g *Gateway) Pin() string { return g.Server.Pin() }

// STAMPPort is the STAMP reflector's UDP port on 127.0.0.1, 0 when a
// test turned it off.
func (g *Gateway) STAMPPort() uint16 { return udpPort(g.Server.STAMPAddr()) }

// DNSAddr is the filtering resolver's address on the host (UDP and
// TCP), invalid when a test turned DNS off.
func (g *Gateway) DNSAddr() netip.AddrPort {
	if a, ok := g.Server.DNSAddr().(*net.UDPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// WireGuardPort is the WireGuard endpoint's UDP port, 0 when a test
// turned it off.
func (g *Gateway) WireGuardPort() uint16 {
	if g.Config.WireGuard == nil {
		return 0
	}
	return g.Config.WireGuard.ListenPort
}

// Token mints an enrollment token for uses enrollments, valid an hour,
// and returns its secret.
func (g *Gateway) Token(tb testing.TB, uses int) string {
	tb.Helper()
	tc, err := g.API.CreateToken(context.Background(), gwapi.TokenRequest{TTL: "1h", Uses: uses, Label: "gatewaytest"})
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	return tc.Secret
}

// Device is an enrolled device, with no tunnel.
type Device struct {
	// Key is the device's private key.
	Key tunnel.PrivateKey
	// Enrollment is the gateway's answer to the device's enrollment;
	// its DeviceCredential authenticates the device (see Credential).
	Enrollment gwapi.Enrollment
}

// Credential is the device credential its enrollment gave.
func (d Device) Credential() string { return d.Enrollment.DeviceCredential }

// Enroll enrolls a fresh key with token, failing the test if the gateway
// refuses.
func (g *Gateway) Enroll(tb testing.TB, token string) Device {
	tb.Helper()
	k, err := tunnel.GeneratePrivateKey()
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	en, err := g.API.Enroll(ctx, gwapi.EnrollRequest{Token: token, PublicKey: k.Public().String(), Label: "gatewaytest"})
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	return Device{Key: k, Enrollment: en}
}

// Client is an enrolled device with a userspace tunnel up to the gateway.
type Client struct {
	*tunnel.Userspace
	// Enrollment is the gateway's answer to the device's enrollment.
	Enrollment gwapi.Enrollment
	// Gateway is the gateway's tunnel address.
	Gateway netip.Addr
}

// Connect enrolls a fresh key with token (Enroll) and brings a split
// userspace tunnel up with the answer (no root: a netstack in this
// process, no proxies), taken down when the test ends. The tunnel's first
// handshake may still be under way when it returns: see Reaches.
func (g *Gateway) Connect(tb testing.TB, token string) *Client {
	tb.Helper()
	d := g.Enroll(tb, token)
	en := d.Enrollment
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, plan, err := wgconf.FromEnrollment(d.Key, en, tunnel.ModeSplit, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	u, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: tunnel.Options{Config: cfg, Plan: plan}})
	if err != nil {
		tb.Fatalf("gatewaytest: %v", err)
	}
	if err := u.Up(ctx); err != nil {
		tb.Fatalf("gatewaytest: tunnel up: %v", err)
	}
	tb.Cleanup(func() { _ = u.Down(context.Background()) })
	gw, err := netip.ParseAddr(en.GatewayAddress)
	if err != nil {
		tb.Fatalf("gatewaytest: gateway address: %v", err)
	}
	return &Client{Userspace: u, Enrollment: en, Gateway: gw}
}

// Reaches pings the gateway's tunnel address once through the tunnel and
// reports whether it answered within timeout.
func (c *Client) Reaches(timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := c.Ping(ctx, c.Gateway)
	return err == nil
}

// Address is the client's tunnel address.
func (c *Client) Address() netip.Addr {
	return netip.MustParsePrefix(c.Enrollment.Address).Addr()
}

// freeUDPPort asks the kernel for a free loopback UDP port: the
// WireGuard endpoint must know its port before it starts, since
// enrollment tells clients where it is.
func freeUDPPort(tb testing.TB) uint16 {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("gatewaytest: a free UDP port: %v", err)
	}
	defer pc.Close()
	return udpPort(pc.LocalAddr())
}

func udpPort(a net.Addr) uint16 {
	if u, ok := a.(*net.UDPAddr); ok {
		return uint16(u.Port)
	}
	return 0
}

// String describes the gateway for test logs.
func (g *Gateway) String() string {
	return fmt.Sprintf("gateway %q at %s (WireGuard port %d, DNS %s)", g.Config.Name, g.URL(), g.WireGuardPort(), g.DNSAddr())
}

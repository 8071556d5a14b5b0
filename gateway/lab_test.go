package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/gwapi/wgconf"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/tunnel"
)

// The lab tests run the gateway as a process inside the lab's gateway
// namespace, as it runs in life: this test binary, re-executed with
// childEnv naming its config file.
const childEnv = "TETHER_GATEWAY_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		if err := runChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "gateway child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild serves the config at path until SIGTERM or SIGINT.
func runChild(path string) error {
	cfg, err := gateway.LoadConfig(path)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := gateway.New(cfg, gateway.Options{Logger: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return s.Run(ctx)
}

// labGateway is a gateway process in a lab, with its admin token.
type labGateway struct {
	lab   *netlab.Lab
	cmd   interface{ Wait() error }
	pid   int
	base  string
	admin string
	hc    *http.Client  // dials from the home namespace
	api   *gwapi.Client // over hc, with the admin token
}

// startLabGateway writes a config for mode and starts the gateway in the
// lab's gateway namespace; its API is reached from home, over the
// internet, as a laptop reaches it.
func startLabGateway(t *testing.T, l *netlab.Lab, mode string) *labGateway {
	t.Helper()
	dir := t.TempDir()
	sec, err := gateway.WriteSecrets(dir, nil, time.Now())
	require.NoError(t, err)
	cfg := gateway.DefaultConfig()
	cfg.Name = "lab-" + mode
	cfg.API.Listen = netip.AddrPortFrom(netlab.GatewayAddr, 8443).String()
	cfg.API.AdminTokenFile = sec.AdminTokenFile
	cfg.Measure.STAMPListen = ""
	cfg.WireGuard = &gateway.WireGuardConfig{Mode: mode, ListenPort: 51820, Address: netip.MustParsePrefix("10.99.0.1/24"), KeyFile: sec.KeyFile,
		Endpoint: netip.AddrPortFrom(netlab.GatewayAddr, 51820).String(), CompanyPrefixes: []netip.Prefix{netlab.CorpPrefix},
		Store: filepath.Join(dir, "peers.db")}
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, gateway.WriteConfig(path, cfg))
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd, err := l.Gateway.Start("env", childEnv+"="+path, exe)
	require.NoError(t, err)
	g := &labGateway{lab: l, cmd: cmd, pid: cmd.Process.Pid, base: "http://" + cfg.API.Listen, admin: sec.AdminToken,
		hc: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: l.Home.DialContext}}}
	g.api, err = gwapi.New(gwapi.Config{BaseURL: g.base, HTTP: g.hc, AdminToken: g.admin})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := g.api.Ready(context.Background())
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "the gateway did not come up (run with %s=1 to see its log)", netlab.DebugEnv)
	return g
}

// metric reads one unlabelled sample from the gateway's /metrics.
func (g *labGateway) metric(t *testing.T, name string) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", g.base+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+g.admin)
	resp, err := g.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// stop sends SIGTERM and waits for a clean exit.
func (g *labGateway) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(g.pid, syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the gateway's exit")
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not stop within 15 s of SIGTERM")
	}
}

// nsBind opens WireGuard's sockets in a namespace. wireguard-go may open
// them from its own goroutines (a TUN "up" event races the caller's Up),
// so wrapping Up in the namespace is not enough.
type nsBind struct {
	conn.Bind
	ns *netlab.Namespace
}

func (b nsBind) Open(port uint16) (fns []conn.ReceiveFunc, actual uint16, err error) {
	derr := b.ns.Do(func() error {
		fns, actual, err = b.Bind.Open(port)
		return nil
	})
	if derr != nil {
		return nil, 0, derr
	}
	return fns, actual, err
}

// labClient is a userspace tunnel client in the home namespace.
type labClient struct {
	*tunnel.Userspace
	en   gwapi.Enrollment
	plan *tunnel.Plan
}

func (g *labGateway) client(t *testing.T, token string, mode tunnel.Mode) *labClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := tunnel.GeneratePrivateKey()
	require.NoError(t, err)
	en, err := g.api.Enroll(ctx, gwapi.EnrollRequest{Token: token, PublicKey: k.Public().String(), Label: "lab " + string(mode)})
	require.NoError(t, err)
	cfg, plan, err := wgconf.FromEnrollment(k, en, mode, netlab.GatewayAddr)
	require.NoError(t, err)
	u, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: tunnel.Options{Config: cfg, Plan: plan},
		Direct: g.lab.Home.DialContext, Bind: nsBind{Bind: conn.NewDefaultBind(), ns: g.lab.Home}})
	require.NoError(t, err)
	require.NoError(t, u.Up(ctx))
	t.Cleanup(func() { _ = u.Down(context.Background()) })
	return &labClient{Userspace: u, en: en, plan: plan}
}

// get fetches url as the client's plan routes it and returns the body.
func (c *labClient) get(url string) (string, error) {
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: c.DialContext, DisableKeepAlives: true}}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// udpEcho sends one datagram through the plan and waits for its echo.
func (c *labClient) udpEcho(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := c.DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 64)
	for range 5 {
		if _, err := conn.Write([]byte("tether")); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil {
			if string(buf[:n]) != "tether" {
				return fmt.Errorf("echo %q", buf[:n])
			}
			return nil
		}
	}
	return fmt.Errorf("no echo from %s", addr)
}

// corpServices stands up a company server on corp: HTTP that answers
// with the address it sees, and a UDP echo.
func corpServices(t *testing.T, l *netlab.Lab) (httpURL, udpAddr string) {
	ln, err := l.Corp.Listen("tcp", netip.AddrPortFrom(netlab.CorpHostAddr, 80).String())
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	pc, err := l.Corp.ListenPacket("udp", netip.AddrPortFrom(netlab.CorpHostAddr, 7).String())
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go netlab.EchoUDP(pc)
	return "http://" + netlab.CorpHostAddr.String() + "/", pc.LocalAddr().String()
}

// TestLabTwoClients is the data-plane test, in both modes: two
// laptops at home enroll over the internet, one full and one split. Both
// reach corp; the full one reaches the internet through the gateway; one
// is revoked and cut at once while the other keeps working.
func TestLabTwoClients(t *testing.T) {
	for _, mode := range []string{gateway.ModeTUN, gateway.ModeUserspace} {
		t.Run(mode, func(t *testing.T) { testTwoClients(t, mode) })
	}
}

func testTwoClients(t *testing.T, mode string) {
	l := netlab.NewConfig(t, netlab.Config{Profile: netlab.Profile{Name: "unshaped"}, NoGatewayNAT: true})
	corpURL, corpUDP := corpServices(t, l)
	g := startLabGateway(t, l, mode)
	t.Cleanup(func() {
		if t.Failed() {
			// What the network looked like, for the failure's reader.
			for _, c := range []struct {
				ns   *netlab.Namespace
				args []string
			}{{l.Gateway, []string{"nft", "list", "ruleset"}}, {l.Gateway, []string{"ip", "addr"}}, {l.Gateway, []string{"ip", "route"}}, {l.Corp, []string{"ip", "route"}}} {
				out, err := c.ns.Run(context.Background(), c.args[0], c.args[1:]...)
				t.Logf("%s: %s: %v\n%s", c.ns.Role, strings.Join(c.args, " "), err, out)
			}
		}
	})
	tc, err := g.api.CreateToken(context.Background(), gwapi.TokenRequest{TTL: "1h", Uses: 2, Label: "lab"})
	require.NoError(t, err)
	// The WireGuard port answers reachability probes from home.
	pconn, err := l.Home.DialContext(context.Background(), "udp", netip.AddrPortFrom(netlab.GatewayAddr, 51820).String())
	require.NoError(t, err)
	assert.NoError(t, wgProbe(t, pconn), "a UDP probe to the WireGuard port")
	pconn.Close()
	full := g.client(t, tc.Secret, tunnel.ModeFull)
	split := g.client(t, tc.Secret, tunnel.ModeSplit)
	webIP := fmt.Sprintf("http://%s:%d/ip", netlab.WebAddr, netlab.WebPort)
	gwTun := netip.MustParseAddr(full.en.GatewayAddress)

	// Both reach corp, over TCP and UDP. In tun mode corp sees their
	// tunnel addresses (no masquerade toward the company); in userspace
	// mode the gateway's host sockets, so its corp-side address.
	for _, c := range []*labClient{full, split} {
		require.True(t, c.plan.Contains(netlab.CorpHostAddr))
		var seen string
		require.Eventually(t, func() bool { var err error; seen, err = c.get(corpURL); return err == nil }, 10*time.Second, 100*time.Millisecond)
		want := netip.MustParsePrefix(c.en.Address).Addr().String()
		if mode == gateway.ModeUserspace {
			want = netlab.CorpGWAddr.String()
		}
		assert.Equal(t, want, seen, "the address corp sees for the %s client", c.plan.Mode)
		assert.NoError(t, c.udpEcho(corpUDP), "UDP to corp from the %s client", c.plan.Mode)
	}

	// The full client reaches the internet through the gateway: the web
	// server sees the gateway's public address (the masquerade). The
	// split client goes direct: the web server sees the home's.
	require.True(t, full.plan.Contains(netlab.WebAddr))
	seen, err := full.get(webIP)
	require.NoError(t, err)
	assert.Equal(t, netlab.GatewayAddr.String(), seen, "the full tunnel's internet egress")
	require.False(t, split.plan.Contains(netlab.WebAddr))
	seen, err = split.get(webIP)
	require.NoError(t, err)
	assert.Equal(t, netlab.ISPWANAddr.String(), seen, "the split tunnel's direct internet")

	if mode == gateway.ModeUserspace {
		// The subnet router counted what it relayed: two clients' corp
		// page and UDP echo, and the full client's internet fetch.
		assert.GreaterOrEqual(t, g.metric(t, "tether_forward_tcp_accepted_total"), 3.0)
		assert.GreaterOrEqual(t, g.metric(t, "tether_forward_udp_flows_total"), 2.0)
	}

	// Peers never reach each other.
	splitAddr := netip.MustParsePrefix(split.en.Address).Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err = full.Ping(ctx, splitAddr)
	cancel()
	assert.Error(t, err, "one peer pinged another through the gateway")

	// Revocation: the full client's probes run every 10 ms while the
	// admin revokes it; the first probe sent after the call returns must
	// already go unanswered, and so must every later one.
	var mu sync.Mutex
	type probe struct {
		sent time.Time
		ok   bool
	}
	var probes []probe
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			sent := time.Now()
			_, err := full.Ping(ctx, gwTun)
			cancel()
			mu.Lock()
			probes = append(probes, probe{sent, err == nil})
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	called := time.Now()
	rv, err := g.api.Revoke(context.Background(), full.en.PeerID)
	require.NoError(t, err)
	returned := time.Now()
	time.Sleep(time.Second)
	close(stop)
	<-done
	var before, after, afterOK int
	for _, p := range probes {
		switch {
		case p.sent.Before(called):
			if p.ok {
				before++
			}
		case p.sent.After(returned):
			after++
			if p.ok {
				afterOK++
			}
		}
	}
	t.Logf("%s: revoke call %.1f ms (device removal %.3f ms); %d answered probes before, %d of %d answered after",
		mode, float64(returned.Sub(called).Microseconds())/1000, rv.RemovedInMS, before, afterOK, after)
	assert.Positive(t, before, "the full client worked before the revocation")
	assert.Positive(t, after)
	assert.Zero(t, afterOK, "the revoked client still reached the gateway")
	assert.Positive(t, rv.SessionsEnded, "the revocation ended the full client's sessions")
	if mode == gateway.ModeTUN {
		// Its UDP echo and TCP fetches left conntrack entries; they are
		// gone, so a late reply from corp is dropped at the gateway rather
		// than routed to the next peer given the address.
		fullAddr := netip.MustParsePrefix(full.en.Address).Addr()
		var left []string
		require.NoError(t, l.Gateway.Do(func() error {
			flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
			for _, f := range flows {
				for _, ip := range []net.IP{f.Forward.SrcIP, f.Forward.DstIP, f.Reverse.SrcIP, f.Reverse.DstIP} {
					if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == fullAddr {
						left = append(left, f.String())
						break
					}
				}
			}
			return err
		}))
		assert.Empty(t, left, "conntrack entries of the revoked peer")
	}
	assert.Less(t, returned.Sub(called), time.Second, "revocation must cut within 1 s")
	_, err = full.get(corpURL)
	assert.Error(t, err, "the revoked client still reached corp")

	// The other keeps working.
	seen, err = split.get(corpURL)
	assert.NoError(t, err, "the split client lost corp when another peer was revoked")
	assert.NotEmpty(t, seen)

	g.stop(t)
	if mode == gateway.ModeTUN {
		out, err := l.Gateway.Run(context.Background(), "nft", "list", "tables")
		require.NoError(t, err)
		assert.NotContains(t, out, gateway.NATTable, "the gateway left its nftables table behind")
		_, err = l.Gateway.Run(context.Background(), "ip", "link", "show", gateway.DefaultTUNInterface)
		assert.Error(t, err, "the gateway left its TUN device behind")
	}
}

package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// httpGet fetches url from inside ns without following redirects.
func httpGet(t *testing.T, ns *Namespace, url string) (*http.Response, string) {
	t.Helper()
	c := &http.Client{
		Transport:     &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true},
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func lookup(t *testing.T, ns *Namespace, server netip.Addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := ns.DialContext(ctx, "udp", netip.AddrPortFrom(server, 53).String())
	require.NoError(t, err)
	defer c.Close()
	resp, _, err := new(dns.Client).ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: c})
	require.NoError(t, err)
	return resp
}

func TestLabTopology(t *testing.T) {
	l := New(t, Profiles["fiber"])

	// The home reaches the internet's web server, NATed by the ISP box.
	resp, body := httpGet(t, l.Home, "http://"+WebAddr.String()+"/ip")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, ISPWANAddr.String(), strings.TrimSpace(body), "the internet must see the ISP's public address")

	resp, _ = httpGet(t, l.Home, "http://"+WebAddr.String()+"/generate_204")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	// The home router resolves through the internet's DNS; unknown names
	// stay NXDOMAIN on an honest line.
	r := lookup(t, l.Home, HomeRouterAddr, WebName, dns.TypeA)
	require.Len(t, r.Answer, 1)
	assert.Equal(t, WebAddr.String(), r.Answer[0].(*dns.A).A.String())
	r = lookup(t, l.Home, HomeRouterAddr, "nx-"+l.ID+".internet.test.", dns.TypeA)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)

	// A large answer is truncated over UDP without EDNS, and whole over TCP.
	r = lookup(t, l.Home, HomeRouterAddr, BigName, dns.TypeTXT)
	assert.True(t, r.Truncated, "a 2.4 kB TXT answer must not fit 512 bytes")

	// corp is reachable from the gateway only, never from home directly.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := l.Home.DialContext(ctx, "tcp", netip.AddrPortFrom(CorpHostAddr, 22).String())
	require.Error(t, err, "corp must not be reachable from home outside the tunnel")
	ln, err := l.Corp.Listen("tcp", netip.AddrPortFrom(CorpHostAddr, 8000).String())
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := l.Gateway.DialContext(ctx, "tcp", netip.AddrPortFrom(CorpHostAddr, 8000).String())
	require.NoError(t, err, "the gateway must reach corp")
	c.Close()

	// The resolv.conf that `ip netns exec` shows the home.
	out, err := l.Home.Run(ctx, "cat", "/etc/resolv.conf")
	require.NoError(t, err)
	assert.Contains(t, out, "nameserver "+HomeRouterAddr.String())
}

// TestShapingRates proves that the ISP box shapes each direction: iperf3
// between home and the internet measures each profile's rate between 85% and 103% of the set rate.
// TCP goodput sits about 4.5% under the tbf rate (tbf counts Ethernet,
// IP and TCP headers: 1448 payload bytes in 1514), which is in the budget.
func TestShapingRates(t *testing.T) {
	for _, name := range []string{"fiber", "cable_bloated", "dsl_bloated"} {
		t.Run(name, func(t *testing.T) {
			p := Profiles[name]
			l := New(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := l.StartIperf3(ctx)
			require.NoError(t, err)
			for _, dir := range []struct {
				name    string
				reverse bool
				link    Link
			}{{"down", true, p.Down}, {"up", false, p.Up}} {
				// Slow links need longer runs to average over TCP's sawtooth.
				d := 3 * time.Second
				if dir.link.Rate < 10*Mbps {
					d = 6 * time.Second
				}
				res, err := l.Iperf3(ctx, l.Home, srv, dir.reverse, 1, d)
				require.NoError(t, err)
				set := float64(dir.link.Rate) / 1e6
				errPct := (res.Mbps - set) / set * 100
				t.Logf("%s %s: set %.1f Mbit/s, iperf3 %.2f Mbit/s (%+.1f%%)", name, dir.name, set, res.Mbps, errPct)
				// A shaper never passes more than its rate; header
				// overhead and a busy CI core take up to 15% off it.
				assert.GreaterOrEqual(t, res.Mbps, set*0.85, "%s %s rate", name, dir.name)
				assert.LessOrEqual(t, res.Mbps, set*1.03, "%s %s rate", name, dir.name)
			}
		})
	}
}

// TestBufferbloat proves the queues are real: four upload streams through
// the bloated cable profile's 300 ms queue raise the RTT by more than 50 ms,
// and the same load on fiber's 5 ms queue does not.
func TestBufferbloat(t *testing.T) {
	for _, tc := range []struct {
		profile  string
		min, max time.Duration // bounds on the loaded-minus-idle increase
	}{
		{"cable_bloated", 50 * time.Millisecond, 400 * time.Millisecond},
		{"fiber", 0, 20 * time.Millisecond},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			l := New(t, Profiles[tc.profile])
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			idle, err := l.ProbeRTT(ctx, l.Home, 20, 50*time.Millisecond, time.Second)
			require.NoError(t, err)
			srv, err := l.StartIperf3(ctx)
			require.NoError(t, err)
			loadDone := make(chan error, 1)
			go func() {
				_, err := l.Iperf3(ctx, l.Home, srv, false, 4, 6*time.Second)
				loadDone <- err
			}()
			time.Sleep(2 * time.Second) // let the queue fill
			loaded, err := l.ProbeRTT(ctx, l.Home, 30, 100*time.Millisecond, 2*time.Second)
			require.NoError(t, err)
			require.NoError(t, <-loadDone)
			inc := loaded.Median() - idle.Median()
			t.Logf("%s: idle RTT %v (lost %d/%d), loaded RTT %v (lost %d/%d), increase %v",
				tc.profile, idle.Median(), idle.Lost, idle.Sent, loaded.Median(), loaded.Lost, loaded.Sent, inc)
			require.NotEmpty(t, loaded.RTTs)
			assert.Greater(t, inc, tc.min)
			assert.Less(t, inc, tc.max)
		})
	}
}

func TestEveryProfileBuildsAndLeavesNothing(t *testing.T) {
	SkipUnlessSupported(t)
	for _, name := range ProfileNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, err := Start(context.Background(), Config{Profile: Profiles[name]})
			require.NoError(t, err)
			id := l.ID
			require.NoError(t, l.Close())
			require.NoError(t, l.Close(), "Close is idempotent")
			entries, err := os.ReadDir(netnsDir)
			require.NoError(t, err)
			for _, e := range entries {
				assert.NotContains(t, e.Name(), namePrefix+id+"-", "namespace left behind")
			}
			_, err = os.Stat(filepath.Join("/etc/netns", namePrefix+id+"-home"))
			assert.True(t, os.IsNotExist(err), "resolv.conf directory left behind")
		})
	}
}

func TestStaleLabsAreSwept(t *testing.T) {
	SkipUnlessSupported(t)
	// A process that has exited stands in for a test binary that was killed.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale := fmt.Sprintf("%s%d-1-home", namePrefix, dead.Process.Pid)
	require.NoError(t, exec.Command("ip", "netns", "add", stale).Run())
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", stale).Run() })

	l := New(t, Profiles["fiber"])
	_ = l
	_, err := os.Stat(filepath.Join(netnsDir, stale))
	assert.True(t, os.IsNotExist(err), "a lab from a dead process must be removed")
}

func TestDNSHijackProfile(t *testing.T) {
	l := New(t, Profiles["dns_hijack"])
	r := lookup(t, l.Home, HomeRouterAddr, "nx-"+l.ID+".internet.test.", dns.TypeA)
	require.Equal(t, dns.RcodeSuccess, r.Rcode, "the hijacking resolver must rewrite NXDOMAIN")
	require.Len(t, r.Answer, 1)
	assert.Equal(t, AssistAddr.String(), r.Answer[0].(*dns.A).A.String())
	// The upstream itself stays honest: the lie is the home router's.
	r = lookup(t, l.Home, DNSAddr, "nx-"+l.ID+".internet.test.", dns.TypeA)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
}

// TestDNSInterceptProfile: the intercepting router answers, over UDP and
// TCP, for an address where no DNS server is (TEST-NET-1, RFC 5737),
// with the answer coming back from that address; an honest line's router
// passes the query on, and nothing answers.
func TestDNSInterceptProfile(t *testing.T) {
	nowhere := netip.MustParseAddrPort("192.0.2.1:53")
	exchange := func(ns *Namespace, network string) (*dns.Msg, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := ns.DialContext(ctx, network, nowhere.String())
		if err != nil {
			return nil, err
		}
		defer c.Close()
		resp, _, err := (&dns.Client{Net: network}).ExchangeWithConnContext(ctx, new(dns.Msg).SetQuestion(WebName, dns.TypeA), &dns.Conn{Conn: c})
		return resp, err
	}
	l := New(t, Profiles["dns_intercept"])
	for _, network := range []string{"udp", "tcp"} {
		resp, err := exchange(l.Home, network)
		require.NoError(t, err, network)
		require.Len(t, resp.Answer, 1, network)
		assert.Equal(t, WebAddr.String(), resp.Answer[0].(*dns.A).A.String(), network)
	}
	honest := New(t, Profiles["fiber"])
	for _, network := range []string{"udp", "tcp"} {
		_, err := exchange(honest.Home, network)
		assert.Error(t, err, "%s: nothing answers DNS at a documentation address", network)
	}
}

func TestCaptivePortalProfile(t *testing.T) {
	l := New(t, Profiles["captive_portal"])
	resp, _ := httpGet(t, l.Home, "http://"+WebAddr.String()+"/generate_204")
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, "http://portal.isp.test/login", resp.Header.Get("Location"))
	r := lookup(t, l.Home, HomeRouterAddr, PortalName, dns.TypeA)
	require.Len(t, r.Answer, 1)
	// Everything but HTTP is held back until the user signs in.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := l.Home.DialContext(ctx, "tcp", netip.AddrPortFrom(WebAddr, 443).String())
	assert.Error(t, err)
}

// udpEcho starts an echo server in ns and returns its address.
func udpEcho(t *testing.T, ns *Namespace, addr netip.AddrPort) {
	t.Helper()
	pc, err := ns.ListenPacket("udp", addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go EchoUDP(pc)
}

func TestUDPBlockedProfile(t *testing.T) {
	l := New(t, Profiles["udp_blocked"])
	wg := netip.AddrPortFrom(GatewayAddr, WireGuardPort)
	other := netip.AddrPortFrom(GatewayAddr, WireGuardPort+1)
	udpEcho(t, l.Gateway, wg)
	udpEcho(t, l.Gateway, other)
	ctx := context.Background()
	blocked, err := ProbeUDPEcho(ctx, l.Home.DialContext, wg, 5, 20*time.Millisecond, 300*time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, 5, blocked.Lost, "UDP to the WireGuard port must be dropped")
	open, err := ProbeUDPEcho(ctx, l.Home.DialContext, other, 5, 20*time.Millisecond, 300*time.Millisecond)
	require.NoError(t, err)
	assert.Zero(t, open.Lost, "other UDP must pass")
}

// TestMTULimitedProfile checks that path MTU discovery from home sees the
// ISP uplink's 1400 bytes: a DF-set datagram too big for it draws an ICMP
// "fragmentation needed", after which the kernel reports the path MTU.
func TestMTULimitedProfile(t *testing.T) {
	l := New(t, Profiles["mtu_limited"])
	var mtu int
	err := l.Home.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE); err != nil {
			return err
		}
		sa := &unix.SockaddrInet4{Port: EchoPort, Addr: SpeedAddr.As4()}
		if err := unix.Connect(fd, sa); err != nil {
			return err
		}
		big := make([]byte, 1472) // 1500 on the wire
		for i := 0; i < 20; i++ {
			_ = unix.Send(fd, big, 0)
			time.Sleep(20 * time.Millisecond)
			if m, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU); err == nil && m < 1500 {
				mtu = m
				return nil
			}
		}
		m, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU)
		mtu = m
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, 1400, mtu)
}

func TestLossyProfile(t *testing.T) {
	l := New(t, Profiles["lossy"])
	target := netip.AddrPortFrom(GatewayAddr, STAMPPort)
	udpEcho(t, l.Gateway, target)
	res, err := ProbeUDPEcho(context.Background(), l.Home.DialContext, target, 300, 5*time.Millisecond, time.Second)
	require.NoError(t, err)
	lossPct := float64(res.Lost) / float64(res.Sent) * 100
	t.Logf("lossy: %d/%d lost (%.1f%%; 5%% each way gives 9.75%% expected), median RTT %v", res.Lost, res.Sent, lossPct, res.Median())
	assert.InDelta(t, 9.75, lossPct, 6, "round-trip loss")
	assert.GreaterOrEqual(t, res.Median(), 15*time.Millisecond, "10±5 ms each way")
	assert.Less(t, res.Median(), 40*time.Millisecond)
	// Other UDP is untouched.
	plain := netip.AddrPortFrom(GatewayAddr, 9)
	udpEcho(t, l.Gateway, plain)
	res, err = ProbeUDPEcho(context.Background(), l.Home.DialContext, plain, 20, 5*time.Millisecond, time.Second)
	require.NoError(t, err)
	assert.Less(t, res.Median(), 5*time.Millisecond)
}

func TestSaturatedProfile(t *testing.T) {
	l := New(t, Profiles["saturated"])
	time.Sleep(2 * time.Second) // the background load fills the queues
	res, err := l.ProbeRTT(context.Background(), l.Home, 20, 100*time.Millisecond, 2*time.Second)
	require.NoError(t, err)
	t.Logf("saturated: RTT median %v with background load, lost %d/%d", res.Median(), res.Lost, res.Sent)
	require.NotEmpty(t, res.RTTs)
	assert.Greater(t, res.Median(), 30*time.Millisecond, "background load must build a standing queue")
}

func TestNamespaceDoPropagatesPanicAndErrors(t *testing.T) {
	l := New(t, Profiles["fiber"])
	want := errors.New("boom")
	assert.ErrorIs(t, l.Home.Do(func() error { return want }), want)
	assert.PanicsWithValue(t, "inside", func() { _ = l.Home.Do(func() error { panic("inside") }) })
	// The calling goroutine's namespace is untouched by Do.
	var ino1, ino2 syscall.Stat_t
	require.NoError(t, syscall.Stat("/proc/thread-self/ns/net", &ino1))
	require.NoError(t, l.Home.Do(func() error { return syscall.Stat("/proc/thread-self/ns/net", &ino2) }))
	assert.NotEqual(t, ino1.Ino, ino2.Ino, "Do must run in the lab's namespace")
}

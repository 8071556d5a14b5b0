package client

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/tunnel"
)

// uplinkCapture records what home sends on its uplink, outside the
// tunnel: everything but ARP, link-scope IPv6 multicast (never routed
// past the link; see tunnel's lab test for why not "icmp6") and the
// tunnel's own UDP to the gateway.
type uplinkCapture struct{ pcap string }

func startUplinkCapture(t *testing.T, l *netlab.Lab) *uplinkCapture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv(netlab.RequireEnv) == "1" {
			t.Fatal("tcpdump is missing (make deps installs it)")
		}
		t.Skip("skipping: tcpdump is not installed")
	}
	c := &uplinkCapture{pcap: filepath.Join(t.TempDir(), "uplink.pcap")}
	filter := fmt.Sprintf("not arp and not (ip6 dst net ff02::/16) and not (udp and dst host %s and dst port %d)", labWG.Addr(), labWG.Port())
	_, err := l.Home.Start("tcpdump", "-i", netlab.IfHome, "-Q", "out", "-n", "-U", "-w", c.pcap, filter)
	require.NoError(t, err)
	require.Eventually(t, func() bool { st, err := os.Stat(c.pcap); return err == nil && st.Size() >= 24 }, 10*time.Second, 20*time.Millisecond)
	return c
}

// split reads the capture so far: tetherd's own calls to the gateway's
// API (marked to pass the kill switch, so a dead tunnel still hears of a
// revocation) apart from everything else, which is a leak.
func (c *uplinkCapture) split(t *testing.T) (control, leaks []string) {
	t.Helper()
	time.Sleep(100 * time.Millisecond) // what tcpdump has seen reaches the file
	out, err := exec.Command("tcpdump", "-r", c.pcap, "-n").Output()
	require.NoError(t, err)
	api := fmt.Sprintf(" > %s.%d:", labAPI.Addr(), labAPI.Port())
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, api):
			control = append(control, line)
		default:
			leaks = append(leaks, line)
		}
	}
	return control, leaks
}

// homeTraffic asks the internet's web server and resolver from home every
// 100 ms until ctx is done, as an employee's machine would, and counts
// the answers.
func homeTraffic(ctx context.Context, l *netlab.Lab, ok *atomic.Int64) {
	hc := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DialContext: l.Home.DialContext, DisableKeepAlives: true}}
	web := "http://" + netlab.WebAddr.String() + "/"
	q := new(dns.Msg)
	q.SetQuestion("example.com.", dns.TypeA)
	for ctx.Err() == nil {
		if resp, err := hc.Get(web); err == nil {
			resp.Body.Close()
			ok.Add(1)
		}
		if c, err := l.Home.DialContext(ctx, "udp", net.JoinHostPort(netlab.DNSAddr.String(), "53")); err == nil {
			dc := &dns.Conn{Conn: c}
			_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
			if dc.WriteMsg(q) == nil {
				if _, err := dc.ReadMsg(); err == nil {
					ok.Add(1)
				}
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestLabFailClosed: with the company requiring the kill switch, tetherd
// (a process in the home, TUN engine) lets nothing out of home's uplink
// outside the tunnel while the gateway (a process) is dead, comes back
// when it restarts, holds the kill switch when the employee takes the
// tunnel down, and learns of a revocation through the dead tunnel.
func TestLabFailClosed(t *testing.T) {
	netlab.SkipUnlessSupported(t)
	pol := gwapi.DefaultPolicy()
	pol.FailClosed = gwapi.FailClosedRequired
	s := startLabStack(t, "fiber", pol, EngineTUN)
	l := s.lab
	ctx := context.Background()
	kill := func() bool {
		var left bool
		require.NoError(t, l.Home.Do(func() error {
			var err error
			left, err = tunnel.LeftoverKillSwitch(ctx)
			return err
		}))
		return left
	}
	state := func(want localapi.State, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		var st localapi.Status
		require.Eventually(t, func() bool {
			var err error
			st, err = s.daemon.Status(ctx)
			return err == nil && st.State == want
		}, within, 20*time.Millisecond, "never %s: %+v", want, st)
		return time.Since(start)
	}

	// Enrolled and down: the kill switch already holds.
	state(localapi.StateBlocked, 10*time.Second)
	require.Eventually(t, kill, 10*time.Second, 50*time.Millisecond, "blocked, with the kill switch in place")

	start := time.Now()
	dec, err := s.daemon.Up(ctx, localapi.ModeAuto)
	require.NoError(t, err)
	state(localapi.StateConnected, 20*time.Second)
	upTook := time.Since(start)
	st, err := s.daemon.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, EngineTUN, st.Engine)
	assert.True(t, st.FailClosed)
	assert.Equal(t, gwapi.ModeFull, dec.Mode)
	t.Logf("RESULT up → connected (TUN, fail-closed): %.1f s; decision %s (%s)", upTook.Seconds(), dec.Mode, dec.Reasons[0].ID)

	capture := startUplinkCapture(t, l)
	tctx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	var answered atomic.Int64
	done := make(chan struct{})
	go func() { defer close(done); homeTraffic(tctx, l, &answered) }()
	require.Eventually(t, func() bool { return answered.Load() > 4 }, 10*time.Second, 50*time.Millisecond, "home reaches the internet through the tunnel")
	_, leaks := capture.split(t)
	assert.Empty(t, leaks, "connected: home's uplink carries nothing outside the tunnel")

	// The gateway dies: blocked, and nothing leaves.
	require.NoError(t, syscall.Kill(-s.gateway.Process.Pid, syscall.SIGKILL))
	killed := time.Now()
	blockedIn := state(localapi.StateBlocked, 30*time.Second)
	time.Sleep(3 * time.Second) // the employee's machine keeps trying
	before := answered.Load()
	time.Sleep(2 * time.Second)
	assert.Equal(t, before, answered.Load(), "nothing is answered with the gateway dead")
	control, leaks := capture.split(t)
	t.Logf("RESULT gateway killed: blocked after %.1f s; in %.1f s outside the tunnel %d packets leaked, %d were tetherd's own calls to the gateway's API",
		blockedIn.Seconds(), time.Since(killed).Seconds(), len(leaks), len(control))
	assert.Empty(t, leaks, "with the gateway dead and the kill switch required, nothing leaks")

	// The gateway comes back: connected within seconds.
	gw, err := l.Gateway.Start(s.gwArgs[0], s.gwArgs[1:]...)
	require.NoError(t, err)
	s.gateway = gw
	restarted := time.Now()
	s.waitReady(t, 15*time.Second)
	ready := time.Since(restarted)
	back := state(localapi.StateConnected, 20*time.Second) + ready
	t.Logf("RESULT gateway restart → connected: %.1f s (its API ready after %.1f s)", back.Seconds(), ready.Seconds())
	assert.Less(t, back, 5*time.Second+ready, "back to connected within 5 s of the gateway being ready")
	before = answered.Load()
	require.Eventually(t, func() bool { return answered.Load() > before+2 }, 10*time.Second, 50*time.Millisecond, "traffic flows again")

	// The employee's down: blocked, the kill switch holds, nothing leaks.
	_, err = s.daemon.Down(ctx)
	require.NoError(t, err)
	state(localapi.StateBlocked, 10*time.Second)
	assert.True(t, kill(), "down with the kill switch required: the rules stay")
	_, mark := capture.split(t)
	time.Sleep(2 * time.Second)
	before = answered.Load()
	time.Sleep(time.Second)
	assert.Equal(t, before, answered.Load(), "down and blocked: nothing is answered")
	_, leaks = capture.split(t)
	assert.Len(t, leaks, len(mark), "down and blocked: nothing leaks")
	_, err = s.daemon.Up(ctx, localapi.ModeAuto)
	require.NoError(t, err)
	state(localapi.StateConnected, 20*time.Second)

	// tetherd crashes: the kill switch it leaves holds, and the next
	// tetherd keeps it and reconnects behind it.
	require.NoError(t, syscall.Kill(-s.tetherd.Process.Pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { _, err := s.daemon.Status(ctx); return err != nil }, 5*time.Second, 20*time.Millisecond)
	_, mark = capture.split(t)
	time.Sleep(2 * time.Second)
	assert.True(t, kill(), "a crashed tetherd's kill switch stays")
	_, leaks = capture.split(t)
	assert.Len(t, leaks, len(mark), "tetherd dead: nothing leaks")
	restarted = time.Now()
	s.tetherd, err = l.Home.Start(s.dArgs[0], s.dArgs[1:]...)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := s.daemon.Status(ctx); return err == nil }, 15*time.Second, 20*time.Millisecond)
	state(localapi.StateConnected, 20*time.Second)
	t.Logf("RESULT tetherd killed and restarted → connected: %.1f s, behind the kill switch it left", time.Since(restarted).Seconds())
	_, leaks = capture.split(t)
	assert.Len(t, leaks, len(mark), "nothing leaked while tetherd restarted")

	// Revoked at the gateway while connected: the tunnel goes silent, and
	// tetherd hears of it on its marked way to the API.
	st, err = s.daemon.Status(ctx)
	require.NoError(t, err)
	revoked := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = s.api.Revoke(rctx, st.Enrollment.PeerID)
	cancel()
	require.NoError(t, err)
	in := state(localapi.StateNeedsEnrollment, 20*time.Second)
	st, err = s.daemon.Status(ctx)
	require.NoError(t, err)
	t.Logf("RESULT revoked → needs_enrollment: %.1f s (%s)", time.Since(revoked).Seconds(), st.Reason)
	assert.Less(t, in, 10*time.Second)
	assert.Contains(t, st.Reason, "revoked")
	require.Eventually(t, func() bool { return !kill() }, 10*time.Second, 50*time.Millisecond,
		"a revoked device is no longer the company's: the kill switch goes")
	before = answered.Load()
	require.Eventually(t, func() bool { return answered.Load() > before+2 }, 10*time.Second, 50*time.Millisecond, "home reaches the internet directly")
	stopTraffic()
	<-done
	_, leaks = capture.split(t)
	t.Logf("after the revocation, %d packets went direct, as they should", len(leaks))
}

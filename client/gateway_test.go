package client

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/proxy"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gatewaytest"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag/report"
)

// enrolledDaemon starts a gateway (HTTPS) and a daemon on the userspace
// engine, enrolls the daemon through its local API and returns both.
// The daemon does not connect on its own (Connect off), so each test
// says when.
func enrolledDaemon(t *testing.T, opts ...gatewaytest.Option) (*gatewaytest.Gateway, *localapi.Client, string) {
	t.Helper()
	g := gatewaytest.New(t, append([]gatewaytest.Option{gatewaytest.WithTLS()}, opts...)...)
	state := filepath.Join(t.TempDir(), "state")
	c := startDaemon(t, Config{Socket: filepath.Join(t.TempDir(), "d.sock"), StateDir: state,
		// The host's own resolvers are not this test's business, and may
		// be unreachable: diagnosis checks the gateway's.
		Resolvers: []string{g.DNSAddr().String()}, CaptiveURL: "off"})
	ctx := context.Background()
	_, err := c.SetSettings(ctx, localapi.Settings{Mode: localapi.ModeAuto, Engine: EngineUserspace})
	require.NoError(t, err)
	st, err := c.Enroll(ctx, localapi.EnrollRequest{URL: g.URL(), Token: g.Token(t, 1), Pin: g.Pin(), Label: "laptop"})
	require.NoError(t, err)
	require.NotNil(t, st.Enrollment)
	assert.Equal(t, gatewaytest.Name, waitState(t, c, localapi.StateDisconnected).Gateway.Name)
	return g, c, state
}

// socksGet fetches url through the daemon's SOCKS5 proxy.
func socksGet(t *testing.T, st localapi.Status, url string) (string, error) {
	t.Helper()
	require.NotNil(t, st.Proxies, "the userspace engine serves proxies")
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: socks5Dialer(st.Proxies.SOCKS5)}}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), err
}

// TestDaemonEnrollsConnectsAndRecovers: the daemon's whole story against
// a real gateway: enroll, up (diagnosis, decision with reasons,
// connected), the intranet through the tunnel, a refused mode, a gateway
// restart, down, and a restart of the daemon that resumes.
func TestDaemonEnrollsConnectsAndRecovers(t *testing.T) {
	g, c, state := enrolledDaemon(t)
	ctx := context.Background()

	// The key and the credential are 0600 files, never in the status.
	for _, f := range []string{fileKey, fileCredential, fileEnrollment} {
		fi, err := os.Stat(filepath.Join(state, f))
		require.NoError(t, err, f)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	cred, err := os.ReadFile(filepath.Join(state, fileCredential))
	require.NoError(t, err)
	st, err := c.Status(ctx)
	require.NoError(t, err)
	raw := statusJSON(t, c)
	assert.NotContains(t, raw, strings.TrimSpace(string(cred)), "the credential never leaves the daemon")
	assert.NotContains(t, raw, "PrivateKey")

	// Events: the decision and the report come on the stream.
	events := collectEvents(t, c)

	start := time.Now()
	dec, err := c.Up(ctx, localapi.ModeAuto)
	require.NoError(t, err)
	st = waitState(t, c, localapi.StateConnected)
	upToConnected := time.Since(start)
	t.Logf("tether up → connected in %v (a quick diagnosis included); decision %s: %+v", upToConnected.Round(time.Millisecond), dec.Mode, dec.Reasons)
	require.NotEmpty(t, dec.Reasons)
	assert.Equal(t, gwapi.ModeFull, dec.Mode, "default_mode is full, and an untrusted network forces it anyway")
	assert.Equal(t, EngineUserspace, st.Engine)
	assert.Equal(t, gwapi.ModeFull, st.Mode)
	require.NotNil(t, st.LastReport, "up diagnosed the network first")
	require.NotNil(t, st.Tunnel)
	assert.Equal(t, dec, *st.Decision)

	body, err := socksGet(t, st, "http://"+gatewaytest.TunnelAddress.Addr().String()+"/")
	require.NoError(t, err, "the intranet through the tunnel")
	assert.Contains(t, body, "intranet")

	require.Eventually(t, func() bool { return events.has(localapi.EventDecision) && events.has(localapi.EventReport) }, 5*time.Second, 20*time.Millisecond)
	assert.True(t, events.has(localapi.EventProgress), "the diagnosis's progress is on the stream")

	// A mode company policy does not allow is refused, and says so.
	_, err = c.Up(ctx, "half")
	var le *localapi.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, localapi.CodeBadRequest, le.Code)

	// The gateway restarts: connected again within 5 s of it answering.
	g.Restart(t)
	back := time.Now()
	recovered := waitStateWithin(t, c, localapi.StateConnected, 5*time.Second, func(st localapi.Status) bool {
		return st.Tunnel != nil && st.Tunnel.HandshakeAgeS >= 0 && st.Tunnel.HandshakeAgeS < time.Since(back).Seconds()+0.5
	})
	t.Logf("gateway restart → connected (a handshake after the restart) in %v", time.Since(back).Round(time.Millisecond))
	_, err = socksGet(t, recovered, "http://"+gatewaytest.TunnelAddress.Addr().String()+"/")
	require.NoError(t, err, "the intranet again after the restart")

	_, err = c.Down(ctx)
	require.NoError(t, err)
	waitState(t, c, localapi.StateDisconnected)

	reps, err := c.Reports(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, reps)
	assert.Equal(t, report.Schema, reps[0].Schema)
}

// TestDaemonLearnsItWasRevoked: a device the company revokes is in
// needs_enrollment within seconds, and the reason says it was revoked.
func TestDaemonLearnsItWasRevoked(t *testing.T) {
	g, c, _ := enrolledDaemon(t)
	ctx := context.Background()
	_, err := c.Up(ctx, localapi.ModeFull)
	require.NoError(t, err)
	st := waitState(t, c, localapi.StateConnected)
	require.NotNil(t, st.Enrollment)

	_, err = g.API.Revoke(ctx, st.Enrollment.PeerID)
	require.NoError(t, err)
	revoked := time.Now()
	st = waitStateWithin(t, c, localapi.StateNeedsEnrollment, 10*time.Second, nil)
	t.Logf("revoked → needs_enrollment in %v: %s", time.Since(revoked).Round(time.Millisecond), st.Reason)
	assert.Contains(t, st.Reason, "revoked")
	require.NotNil(t, st.Enrollment)
	assert.NotEmpty(t, st.Enrollment.Revoked)
	_, err = c.Up(ctx, localapi.ModeFull)
	require.ErrorAs(t, err, new(*localapi.Error))
}

// TestDaemonSaysWhenTheHandshakeGoesUnanswered: a gateway whose
// WireGuard endpoint never answers (UDP blocked, say) is named in the
// reason, with what to do, 5 s after the tunnel came up.
func TestDaemonSaysWhenTheHandshakeGoesUnanswered(t *testing.T) {
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { hole.Close() })
	ep := hole.LocalAddr().String()
	_, c, _ := enrolledDaemon(t, gatewaytest.WithConfig(func(cfg *gateway.Config) { cfg.WireGuard.Endpoint = ep }))
	ctx := context.Background()
	_, err = c.Diagnose(ctx, true) // the network is known: up connects at once
	require.NoError(t, err)
	_, err = c.Up(ctx, localapi.ModeFull)
	require.NoError(t, err)
	up := time.Now()
	want := "gateway " + ep + " did not answer the WireGuard handshake within 5 s: UDP may be blocked on this network; `tether diag` checks"
	var st localapi.Status
	require.Eventually(t, func() bool {
		st, err = c.Status(ctx)
		return err == nil && st.Reason == want
	}, 15*time.Second, 50*time.Millisecond, "the reason names the gateway and says what to do: %+v", st)
	t.Logf("the reason came %.1f s after up: %s", time.Since(up).Seconds(), st.Reason)
	assert.Equal(t, localapi.StateConnecting, st.State)
}

// TestDaemonRefusesAModePolicyForbids: with only full allowed, split is
// refused with the policy's word, and auto picks full.
func TestDaemonRefusesAModePolicyForbids(t *testing.T) {
	p := gwapi.DefaultPolicy()
	p.AllowedModes = []string{gwapi.ModeFull}
	_, c, _ := enrolledDaemon(t, gatewaytest.WithPolicy(p))
	ctx := context.Background()
	_, err := c.Up(ctx, localapi.ModeSplit)
	var le *localapi.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, localapi.CodeModeNotAllowed, le.Code)
	assert.Contains(t, le.Message, "only full")
	dec, err := c.Up(ctx, localapi.ModeAuto)
	require.NoError(t, err)
	assert.Equal(t, gwapi.ModeFull, dec.Mode)
}

// TestDaemonResumesAfterARestart: the enrollment, the reports and the
// decisions come back from the state directory.
func TestDaemonResumesAfterARestart(t *testing.T) {
	g := gatewaytest.New(t, gatewaytest.WithTLS())
	state := filepath.Join(t.TempDir(), "state")
	cfg := Config{Socket: filepath.Join(t.TempDir(), "d.sock"), StateDir: state, Resolvers: []string{g.DNSAddr().String()}, CaptiveURL: "off"}
	ctx := context.Background()
	var first localapi.Status
	{
		d, err := New(cfg, Options{NetWatcher: fixedNetwork{}})
		require.NoError(t, err)
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		<-d.Ready()
		c := &localapi.Client{Socket: cfg.Socket}
		_, err = c.SetSettings(ctx, localapi.Settings{Mode: localapi.ModeAuto, Engine: EngineUserspace})
		require.NoError(t, err)
		_, err = c.Enroll(ctx, localapi.EnrollRequest{URL: g.URL(), Token: g.Token(t, 1), Pin: g.Pin()})
		require.NoError(t, err)
		_, err = c.Up(ctx, localapi.ModeAuto)
		require.NoError(t, err)
		first = waitState(t, c, localapi.StateConnected)
		cancel()
		require.NoError(t, <-done)
	}
	c := startDaemon(t, cfg)
	// Connect is on from the up before: the daemon reconnects by itself
	// (a full diagnosis first, as the network is new to this process).
	st := waitStateWithin(t, c, localapi.StateConnected, 30*time.Second, nil)
	assert.Equal(t, first.Enrollment.PeerID, st.Enrollment.PeerID, "the same enrollment")
	reps, err := c.Reports(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(reps), 2, "the report from before the restart is kept, beside the new one")
	assert.Equal(t, first.LastReport.At.Unix(), reps[len(reps)-1].StartedAt.Unix(), "the report kept")
	require.NotNil(t, st.Decision)
	assert.Equal(t, first.Decision.Mode, st.Decision.Mode)
}

// eventLog is a daemon's event stream, collected in the background.
type eventLog struct {
	mu  sync.Mutex
	evs []localapi.Event
}

func (l *eventLog) has(typ string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// snapshot is a copy of the events so far.
func (l *eventLog) snapshot() []localapi.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]localapi.Event(nil), l.evs...)
}

// suggestionFromDecision is a suggestion that came after a decision (a
// report's own come before it).
func (l *eventLog) suggestionFromDecision() *report.Suggestion {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := false
	for _, e := range l.evs {
		switch {
		case e.Type == localapi.EventDecision:
			seen = true
		case seen && e.Type == localapi.EventSuggestion:
			return e.Suggestion
		}
	}
	return nil
}

func collectEvents(t *testing.T, c *localapi.Client) *eventLog {
	l := &eventLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Watch(ctx, func(ev localapi.Event) error {
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

func waitStateWithin(t *testing.T, c *localapi.Client, want localapi.State, within time.Duration, also func(localapi.Status) bool) localapi.Status {
	t.Helper()
	var st localapi.Status
	require.Eventually(t, func() bool {
		var err error
		st, err = c.Status(context.Background())
		return err == nil && st.State == want && (also == nil || also(st))
	}, within, 20*time.Millisecond, "state never became %s within %v (last %+v)", want, within, st)
	return st
}

// socks5Dialer dials through a SOCKS5 proxy.
func socks5Dialer(addr string) func(ctx context.Context, network, target string) (net.Conn, error) {
	d, err := proxy.SOCKS5("tcp", addr, nil, proxy.Direct)
	if err != nil {
		return func(context.Context, string, string) (net.Conn, error) { return nil, err }
	}
	return d.(proxy.ContextDialer).DialContext
}

// statusJSON is the status as the socket serves it.
func statusJSON(t *testing.T, c *localapi.Client) string {
	t.Helper()
	st, err := c.Status(context.Background())
	require.NoError(t, err)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	return string(b)
}

// TestDaemonComparesTheTunnelWithTheLine: --compare-tunnel needs the
// tunnel up; connected, a full diagnosis measures both paths, direct to
// the public API and through the tunnel to the gateway's tunnel address,
// and the report says whose a slowdown is. (Which one is, the lab shows:
// TestLabCompareTunnel.)
func TestDaemonComparesTheTunnelWithTheLine(t *testing.T) {
	netlab.HoldCPU(t) // two full runs
	g, c, _ := enrolledDaemon(t)
	ctx := context.Background()
	_, err := c.DiagnoseWith(ctx, localapi.DiagnoseRequest{CompareTunnel: true})
	var le *localapi.Error
	require.ErrorAs(t, err, &le)
	assert.Equal(t, localapi.CodeNotConnected, le.Code)
	assert.Contains(t, le.Message, "tether up")

	_, err = c.Up(ctx, localapi.ModeFull)
	require.NoError(t, err)
	waitState(t, c, localapi.StateConnected)
	rep, err := c.DiagnoseWith(ctx, localapi.DiagnoseRequest{})
	require.NoError(t, err)
	require.NotNil(t, rep.Tunnel, "a full diagnosis while connected compares")
	tr := rep.Tunnel
	t.Logf("direct %+v; tunnel %+v; %s", tr.Direct, tr.Tunnel, tr.Summary)
	assert.Equal(t, g.URL(), tr.Direct.Server)
	assert.Equal(t, "http://"+gatewaytest.TunnelAddress.Addr().String(), tr.Tunnel.Server)
	assert.Empty(t, tr.Direct.Error)
	assert.Empty(t, tr.Tunnel.Error)
	assert.Positive(t, tr.Direct.DownloadMbps)
	assert.Positive(t, tr.Tunnel.DownloadMbps)
	assert.Contains(t, []string{report.BottleneckNone, report.BottleneckTunnel, report.BottleneckLine}, tr.Bottleneck)
	assert.Equal(t, rep.Server, tr.Tunnel.Server, "the report around it is the tunnel leg's")

	quick, err := c.DiagnoseWith(ctx, localapi.DiagnoseRequest{Quick: true})
	require.NoError(t, err)
	assert.Nil(t, quick.Tunnel, "a quick check does not load the line twice")
}

package client

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/client/policy"
	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/resolver"
	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag/report"
)

// The lab's gateway, as the lab's namespaces reach it.
var (
	labAPI      = netip.AddrPortFrom(netlab.GatewayAddr, 8443)
	labWG       = netip.AddrPortFrom(netlab.GatewayAddr, 51820)
	labTunnelGW = netip.MustParsePrefix("10.99.0.1/24")
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries builds tether-gateway and tetherd once per test binary: the
// lab tests run both ends as processes, as an employee and an operator
// would.
func binaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tether-lab-bin-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator),
			"github.com/tetherwfh/tether/cmd/tether-gateway", "github.com/tetherwfh/tether/cmd/tetherd", "github.com/tetherwfh/tether/cmd/tether").CombinedOutput()
		if err != nil {
			binErr = &buildError{out: string(out), err: err}
		}
	})
	require.NoError(t, binErr)
	return binDir
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// labStack is a real tether-gateway in the lab's gateway namespace and a
// real tetherd in its home, enrolled.
type labStack struct {
	lab     *netlab.Lab
	daemon  *localapi.Client
	api     *gwapi.Client
	tetherd *exec.Cmd
	gateway *exec.Cmd
	gwArgs  []string // how to start the gateway again
	dArgs   []string // and tetherd
}

// startLabStack starts the stack on profile with the company's policy
// pol; tetherd uses the engine named (tun or userspace).
func startLabStack(t *testing.T, profile string, pol gwapi.Policy, engine string) *labStack {
	t.Helper()
	return startLabStackPhone(t, profile, nil, pol, engine)
}

// startLabStackPhone is startLabStack for a home with a second uplink,
// a phone tethered over USB shaped as phone says (none if nil).
func startLabStackPhone(t *testing.T, profile string, phone *netlab.Uplink2, pol gwapi.Policy, engine string) *labStack {
	t.Helper()
	netlab.SkipUnlessSupported(t)
	bins := binaries(t)
	p, err := netlab.LookupProfile(profile)
	require.NoError(t, err)
	l := netlab.NewConfig(t, netlab.Config{Profile: p, Phone: phone})

	// The gateway: written as `tether-gateway init` would, served from
	// its namespace.
	dir := t.TempDir()
	sec, err := gateway.WriteSecrets(dir, []string{netlab.GatewayAddr.String()}, time.Now())
	require.NoError(t, err)
	list := filepath.Join(dir, "phishing.list")
	require.NoError(t, os.WriteFile(list, []byte("phishing.test\n"), 0o644))
	cfg := gateway.DefaultConfig()
	cfg.Name = "lab-gateway"
	cfg.API.Listen, cfg.Measure.STAMPListen = labAPI.String(), netip.AddrPortFrom(netlab.GatewayAddr, 862).String()
	cfg.DNS = &resolver.Config{Listen: "127.0.0.1:5353",
		Lists:      []resolver.ListConfig{{Name: "phishing", Category: "phishing", Format: "domains", Path: list}},
		LocalZones: []resolver.LocalZone{{Name: "corp.test", Records: []string{"intranet IN A " + labTunnelGW.Addr().String()}}}}
	cfg.WireGuard = &gateway.WireGuardConfig{Mode: gateway.ModeUserspace, ListenPort: labWG.Port(), Address: labTunnelGW,
		Endpoint: labWG.String(), CompanyPrefixes: []netip.Prefix{netlab.CorpPrefix}, Store: filepath.Join(dir, "peers.db")}
	cfg.Diagnostics = gateway.DiagnosticsConfig{Canary: "login.phishing.test", ProbeName: "intranet.corp.test"}
	cfg.Policy = pol
	sec.Apply(&cfg)
	gwPath := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, gateway.WriteConfig(gwPath, cfg))
	gwArgs := []string{filepath.Join(bins, "tether-gateway"), "serve", "--config", gwPath}
	gw, err := l.Gateway.Start(gwArgs[0], gwArgs[1:]...)
	require.NoError(t, err)

	tc, err := gwapi.PinnedTLS(sec.Pin)
	require.NoError(t, err)
	// The admin's calls come from the gateway's own host: the home's line
	// may be anything (a captive portal, say).
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: l.Gateway.DialContext, TLSClientConfig: tc}}
	api, err := gwapi.New(gwapi.Config{BaseURL: "https://" + labAPI.String(), HTTP: hc, AdminToken: sec.AdminToken})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := api.Ready(ctx)
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "the lab's gateway never became ready")

	// tetherd in the home, as root there; its socket is on the shared
	// file system.
	ddir := t.TempDir()
	dcfg := Config{Socket: filepath.Join(ddir, "tetherd.sock"), StateDir: filepath.Join(ddir, "state"),
		CaptiveURL: "http://" + netlab.WebAddr.String() + "/generate_204"}
	dPath := filepath.Join(ddir, "tetherd.yaml")
	require.NoError(t, WriteConfig(dPath, dcfg))
	dArgs := []string{filepath.Join(bins, "tetherd"), "--config", dPath}
	d, err := l.Home.Start(dArgs[0], dArgs[1:]...)
	require.NoError(t, err)
	lc := &localapi.Client{Socket: dcfg.Socket}
	require.Eventually(t, func() bool { _, err := lc.Status(context.Background()); return err == nil }, 15*time.Second, 50*time.Millisecond)

	ctx := context.Background()
	if p.CaptivePortal {
		// The employee enrolled at home; the portal's hotel network
		// comes after. Until then, let the home through (the HTTP
		// redirect stays, the drop goes), and close it after enrolling.
		_, err := l.ISP.Run(ctx, "nft", "flush", "chain", "ip", "tetherlab", "forward")
		require.NoError(t, err)
		defer func() {
			_, err := l.ISP.Run(ctx, "nft", "add", "rule", "ip", "tetherlab", "forward", "iifname", netlab.IfISPHome, "counter", "drop")
			require.NoError(t, err)
		}()
	}
	_, err = lc.SetSettings(ctx, localapi.Settings{Mode: localapi.ModeAuto, Engine: engine})
	require.NoError(t, err)
	tok, err := api.CreateToken(ctx, gwapi.TokenRequest{TTL: "1h", Uses: 1, Label: "lab"})
	require.NoError(t, err)
	_, err = lc.Enroll(ctx, localapi.EnrollRequest{URL: "https://" + labAPI.String(), Token: tok.Secret, Pin: sec.Pin, Label: "lab-laptop"})
	require.NoError(t, err)
	return &labStack{lab: l, daemon: lc, api: api, tetherd: d, gateway: gw, gwArgs: gwArgs, dArgs: dArgs}
}

// waitReady waits for the lab's gateway to answer its readiness check.
func (s *labStack) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := s.api.Ready(ctx)
		return err == nil
	}, within, 20*time.Millisecond, "the lab's gateway never became ready")
}

// TestLabDecisions: on each lab line, tetherd (a process in the home)
// diagnoses through the real gateway (a process in its namespace),
// decides with its reasons, and connects.
func TestLabDecisions(t *testing.T) {
	netlab.SkipUnlessSupported(t)
	onlyFull := gwapi.DefaultPolicy()
	onlyFull.AllowedModes = []string{gwapi.ModeFull}
	for _, tc := range []struct {
		profile string
		policy  gwapi.Policy
		mode    string
		reason  string   // the first reason's ID
		texts   []string // what the reasons must say
		hotspot bool     // a use_hotspot suggestion comes with it
		state   localapi.State
	}{
		{"dns_hijack", gwapi.DefaultPolicy(), gwapi.ModeFull, string(report.VerdictDNSHijack), []string{"untrusted", "rewritten", "full tunnel"}, false, localapi.StateConnected},
		{"captive_portal", gwapi.DefaultPolicy(), gwapi.ModeFull, string(report.VerdictCaptivePortal), []string{"untrusted", "captive portal", "full tunnel"}, false,
			// The portal lets nothing through until one signs in: the
			// tunnel waits for the gateway.
			localapi.StateConnecting},
		// 16/1 Mbit/s with 300 ms queues, below DefaultPolicy's 10/3
		// Mbit/s and 150 ms under load.
		{"dsl_bloated", gwapi.DefaultPolicy(), gwapi.ModeSplit, policy.RuleFullNeeds, []string{"Mbit/s up", "ms under load", "3.0 Mbit/s up", "split"}, false, localapi.StateConnected},
		{"dsl_bloated", onlyFull, gwapi.ModeFull, policy.RulePolicyOnly, []string{"only full", "Mbit/s up"}, true, localapi.StateConnected},
	} {
		name := tc.profile + "/" + strings.Join(tc.policy.AllowedModes, "+")
		t.Run(name, func(t *testing.T) {
			s := startLabStack(t, tc.profile, tc.policy, EngineUserspace)
			events := collectEvents(t, s.daemon)
			ctx := context.Background()
			start := time.Now()
			dec, err := s.daemon.Up(ctx, localapi.ModeAuto)
			require.NoError(t, err)
			var st localapi.Status
			require.Eventually(t, func() bool {
				st, err = s.daemon.Status(ctx)
				return err == nil && st.State == tc.state
			}, 20*time.Second, 50*time.Millisecond, "never %s: %+v", tc.state, st)
			t.Logf("%s: up → %s in %v; decision %s:", name, tc.state, time.Since(start).Round(time.Millisecond), dec.Mode)
			for _, r := range dec.Reasons {
				t.Logf("    %s: %s", r.ID, r.Text)
			}
			require.NotEmpty(t, dec.Reasons)
			assert.Equal(t, tc.mode, dec.Mode)
			assert.Equal(t, tc.reason, dec.Reasons[0].ID)
			var all strings.Builder
			for _, r := range dec.Reasons {
				all.WriteString(r.Text + "\n")
			}
			for _, want := range tc.texts {
				assert.Contains(t, all.String(), want)
			}
			if tc.hotspot {
				require.Eventually(t, func() bool { return events.suggestionFromDecision() != nil }, 5*time.Second, 20*time.Millisecond,
					"only full on a poor line: the hotspot is suggested")
				sug := events.suggestionFromDecision()
				assert.Equal(t, report.SuggestionUseHotspot, sug.ID)
				t.Logf("    suggestion: %s", sug.Summary)
				assert.Contains(t, sug.Summary, "Mbit/s")
			} else {
				assert.Nil(t, events.suggestionFromDecision(), "no suggestion from the decision")
			}
		})
	}
}

// TestLabNetworkChange: tetherd (a process, its netlink watcher) follows
// the home's default route to another router: a quick diagnosis of the
// new network, a decision from it (nothing measured of the line: the
// company default), up again at once, then one full diagnosis of the
// line and the decision it calls for, split on dsl_bloated.
func TestLabNetworkChange(t *testing.T) {
	s := startLabStack(t, "dsl_bloated", gwapi.DefaultPolicy(), EngineUserspace)
	ctx := context.Background()
	dec, err := s.daemon.Up(ctx, localapi.ModeAuto)
	require.NoError(t, err)
	require.Equal(t, gwapi.ModeSplit, dec.Mode, "setup: dsl_bloated is split: %+v", dec)
	var st localapi.Status
	require.Eventually(t, func() bool { st, err = s.daemon.Status(ctx); return err == nil && st.State == localapi.StateConnected },
		20*time.Second, 50*time.Millisecond)
	events := collectEvents(t, s.daemon)
	time.Sleep(300 * time.Millisecond) // the watcher's first event, the state, is in
	mark := len(events.snapshot())

	// The same line through another router: a new network as the daemon
	// sees it (the default route's interface and router).
	other := netip.MustParseAddr("192.168.77.254")
	_, err = s.lab.ISP.Run(ctx, "ip", "addr", "add", other.String()+"/24", "dev", netlab.IfISPHome)
	require.NoError(t, err)
	changed := time.Now()
	_, err = s.lab.Home.Run(ctx, "ip", "route", "replace", "default", "via", other.String())
	require.NoError(t, err)

	// Back up at once on the quick check, then the full one decides.
	dump := func() (reports []string) {
		for _, e := range events.snapshot()[mark:] {
			switch e.Type {
			case localapi.EventState:
				t.Logf("  %.1f s state %s %s", e.Time.Sub(changed).Seconds(), e.State.State, e.State.Reason)
			case localapi.EventDecision:
				t.Logf("  %.1f s decision %s %+v", e.Time.Sub(changed).Seconds(), e.Decision.Mode, e.Decision.Reasons)
			case localapi.EventReport:
				t.Logf("  %.1f s report %s: %s", e.Time.Sub(changed).Seconds(), e.Report.Mode, e.Report.Summary)
				reports = append(reports, string(e.Report.Mode))
			case localapi.EventProgress:
				t.Logf("  %.1f s progress %s", e.Time.Sub(changed).Seconds(), e.Progress.Text)
			}
		}
		return reports
	}
	var rebound, decided time.Duration
	var quickDec, lineDec *localapi.Decision
	var sawDiagnosing bool
	ok := assert.Eventually(t, func() bool {
		for _, e := range events.snapshot()[mark:] {
			switch {
			case e.Type == localapi.EventState && e.State.State == localapi.StateDiagnosing:
				sawDiagnosing = true
			case e.Type == localapi.EventState && e.State.State == localapi.StateConnected && quickDec != nil && rebound == 0:
				rebound = e.Time.Sub(changed)
			case e.Type == localapi.EventDecision && quickDec == nil:
				quickDec = e.Decision
			case e.Type == localapi.EventDecision && lineDec == nil && quickDec != nil && e.Decision.Reasons[0].ID != policy.RuleLineUnmeasured:
				lineDec, decided = e.Decision, e.Time.Sub(changed)
			}
		}
		return lineDec != nil && rebound > 0
	}, 60*time.Second, 100*time.Millisecond, "a quick decision, connected, then the line's decision")
	reports := dump()
	require.True(t, ok)
	assert.True(t, sawDiagnosing, "the change shows as diagnosing")
	assert.Equal(t, []string{string(report.ModeQuick), string(report.ModeFull)}, reports, "one quick diagnosis, then one full one, and no more")
	assert.Equal(t, policy.RuleLineUnmeasured, quickDec.Reasons[0].ID, "the quick check measures no speed: %+v", quickDec)
	assert.Equal(t, gwapi.ModeFull, quickDec.Mode, "the company default while the line is unmeasured")
	assert.Equal(t, gwapi.ModeSplit, lineDec.Mode, "dsl_bloated's figures call for split: %+v", lineDec)
	assert.Equal(t, policy.RuleFullNeeds, lineDec.Reasons[0].ID)
	require.Eventually(t, func() bool {
		st, err = s.daemon.Status(ctx)
		return err == nil && st.State == localapi.StateConnected && st.Mode == gwapi.ModeSplit
	}, 20*time.Second, 50*time.Millisecond, "connected in split on the new network: %+v", st)
	t.Logf("RESULT network change → connected (quick check, %s): %.1f s; → %s decided from the line's figures: %.1f s (%s)",
		quickDec.Mode, rebound.Seconds(), lineDec.Mode, decided.Seconds(), lineDec.Reasons[0].Text)
}

// up connects the lab's daemon in mode and waits until it is connected.
func (s *labStack) up(t *testing.T, mode string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.daemon.Up(ctx, mode)
	require.NoError(t, err)
	require.Eventually(t, func() bool { st, err := s.daemon.Status(ctx); return err == nil && st.State == localapi.StateConnected },
		30*time.Second, 100*time.Millisecond, "connected")
}

package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/gwapi/wgconf"
	"github.com/tetherwfh/tether/tunnel"
)

// PeersConfig sets up the gateway scale scenario: a real tether-gateway
// process, Enrolled peers enrolled over its API, Connected of them with
// userspace tunnels up (in this process) pinging the gateway.
type PeersConfig struct {
	GatewayBin string
	Dir        string
	Enrolled   int // default 100
	Connected  int // default 10
}

// PeersResult is what the scenario measured.
type PeersResult struct {
	Enrolled        int     `json:"enrolled"`
	Connected       int     `json:"connected"`
	RSSIdleMB       float64 `json:"rss_idle_mb"`      // started, no peers
	RSSEnrolledMB   float64 `json:"rss_enrolled_mb"`  // after the enrollments
	RSSConnectedMB  float64 `json:"rss_connected_mb"` // with the tunnels up and pinged
	EnrollMedianMS  float64 `json:"enroll_median_ms"`
	EnrollP90MS     float64 `json:"enroll_p90_ms"`
	HandshakeMedMS  float64 `json:"handshake_median_ms"`
	RevokeRemovedMS float64 `json:"revoke_removed_ms"` // removal from the live device, as the gateway reports it
	RevokeCutMS     float64 `json:"revoke_cut_ms"`     // from the revoke call to the client's first unanswered ping
}

func (r PeersResult) String() string {
	return fmt.Sprintf(`gateway with %d enrolled peers, %d connected (userspace data plane)
  RSS: %.1f MB idle, %.1f MB enrolled, %.1f MB connected
  enrollment: median %.2f ms, p90 %.2f ms (a new HTTPS connection with its TLS handshake, SQLite, live device)
  handshake:  median %.2f ms
  revocation: removed from the device in %.3f ms; the first unanswered ping was sent %.1f ms after the call
`, r.Enrolled, r.Connected, r.RSSIdleMB, r.RSSEnrolledMB, r.RSSConnectedMB, r.EnrollMedianMS, r.EnrollP90MS, r.HandshakeMedMS, r.RevokeRemovedMS, r.RevokeCutMS)
}

// RunPeers runs the scenario.
func RunPeers(ctx context.Context, cfg PeersConfig) (PeersResult, error) {
	if cfg.Enrolled == 0 {
		cfg.Enrolled = 100
	}
	if cfg.Connected == 0 {
		cfg.Connected = 10
	}
	var res PeersResult
	res.Enrolled, res.Connected = cfg.Enrolled, cfg.Connected
	apiPort, err := freeTCPPort()
	if err != nil {
		return res, err
	}
	wgPort, err := freePort()
	if err != nil {
		return res, err
	}
	// HTTPS with a pinned self-signed certificate, as init sets up.
	sec, err := gateway.WriteSecrets(cfg.Dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		return res, err
	}
	gwCfg := gateway.DefaultConfig()
	gwCfg.Name, gwCfg.LogLevel = "bench", "warn"
	gwCfg.API.Listen, gwCfg.Measure.STAMPListen = fmt.Sprintf("127.0.0.1:%d", apiPort), ""
	gwCfg.WireGuard = &gateway.WireGuardConfig{ListenPort: uint16(wgPort), Address: netip.MustParsePrefix("10.99.0.1/16"),
		Endpoint: fmt.Sprintf("127.0.0.1:%d", wgPort), Store: filepath.Join(cfg.Dir, "peers.db"), EnrollPerMinute: 100000}
	sec.Apply(&gwCfg)
	base := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	g, err := StartProcess(ctx, cfg.GatewayBin, cfg.Dir, gwCfg, gwapi.Config{BaseURL: base, Pin: sec.Pin, AdminToken: sec.AdminToken})
	if err != nil {
		return res, err
	}
	defer g.Stop()
	time.Sleep(500 * time.Millisecond)
	res.RSSIdleMB = rssMB(g.PID)

	// A fresh connection, TLS handshake included, per enrollment: each
	// laptop enrolls once, from its own connection.
	tc, err := gwapi.PinnedTLS(sec.Pin)
	if err != nil {
		return res, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	api, err := gwapi.New(gwapi.Config{BaseURL: base, HTTP: hc, AdminToken: sec.AdminToken})
	if err != nil {
		return res, err
	}
	tok, err := api.CreateToken(ctx, gwapi.TokenRequest{TTL: "1h", Uses: cfg.Enrolled})
	if err != nil {
		return res, err
	}
	type client struct {
		key tunnel.PrivateKey
		en  gwapi.Enrollment
	}
	var clients []client
	var enrollMS []float64
	for i := range cfg.Enrolled {
		ck, _ := tunnel.GeneratePrivateKey()
		start := time.Now()
		en, err := api.Enroll(ctx, gwapi.EnrollRequest{Token: tok.Secret, PublicKey: ck.Public().String(), Label: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			return res, err
		}
		enrollMS = append(enrollMS, float64(time.Since(start).Microseconds())/1000)
		clients = append(clients, client{ck, en})
	}
	res.EnrollMedianMS, res.EnrollP90MS = percentile(enrollMS, 50), percentile(enrollMS, 90)
	time.Sleep(500 * time.Millisecond)
	res.RSSEnrolledMB = rssMB(g.PID)

	var tuns []*tunnel.Userspace
	defer func() {
		for _, u := range tuns {
			_ = u.Down(context.Background())
		}
	}()
	var hsMS []float64
	gw := netip.MustParseAddr("10.99.0.1")
	for _, c := range clients[:cfg.Connected] {
		tc, plan, err := wgconf.FromEnrollment(c.key, c.en, tunnel.ModeSplit, netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			return res, err
		}
		u, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: tunnel.Options{Config: tc, Plan: plan}})
		if err != nil {
			return res, err
		}
		start := time.Now()
		if err := u.Up(ctx); err != nil {
			return res, err
		}
		tuns = append(tuns, u)
		if !pingUntil(u, gw, 10*time.Second) {
			return res, fmt.Errorf("client %s got no answer through the tunnel", c.en.Address)
		}
		hsMS = append(hsMS, float64(time.Since(start).Microseconds())/1000)
	}
	res.HandshakeMedMS = percentile(hsMS, 50)
	time.Sleep(500 * time.Millisecond)
	res.RSSConnectedMB = rssMB(g.PID)

	// Revoke the first connected client while it pings.
	start := time.Now()
	rv, err := api.Revoke(ctx, clients[0].en.PeerID)
	if err != nil {
		return res, err
	}
	res.RevokeRemovedMS = rv.RemovedInMS
	// The cut is when the first unanswered ping was sent (it then waits
	// 200 ms to be sure no answer comes).
	for time.Since(start) < 5*time.Second {
		sent := time.Since(start)
		if !pingOnce(tuns[0], gw, 200*time.Millisecond) {
			res.RevokeCutMS = float64(sent.Microseconds()) / 1000
			break
		}
	}
	if res.RevokeCutMS == 0 {
		return res, fmt.Errorf("the revoked client still reached the gateway after 5 s")
	}
	return res, nil
}

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func pingOnce(u *tunnel.Userspace, gw netip.Addr, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := u.Ping(ctx, gw)
	return err == nil
}

func pingUntil(u *tunnel.Userspace, gw netip.Addr, d time.Duration) bool {
	for start := time.Now(); time.Since(start) < d; {
		if pingOnce(u, gw, 200*time.Millisecond) {
			return true
		}
	}
	return false
}

// percentile is the nearest-rank p-th percentile of xs (which it sorts).
func percentile(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := (len(xs)*p + 99) / 100
	return xs[max(0, min(len(xs)-1, i-1))]
}

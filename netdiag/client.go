package netdiag

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// Run-level timeouts.
const (
	// fullDeadline and quickDeadline bound whole runs: the 10 s and
	// 2 s, which is half of networkQuality's ~20 s and a tenth of a typical
	// speed test.
	fullDeadline  = 10 * time.Second
	quickDeadline = 2 * time.Second
	// configTimeout bounds fetching the server's /.well-known/nq.
	configTimeout = 1500 * time.Millisecond
	// loadWarmup: the loaded latency figure uses samples from after the
	// load has run this long, so the queue has had time to fill.
	loadWarmup = time.Second
	// finishReserve is kept back from the run's deadline for stopping
	// streams and assembling the report.
	finishReserve = 400 * time.Millisecond
	// maxDirectionBudget caps a direction that inherits unused time.
	maxDirectionBudget = 6 * time.Second
	// latencyProbeStart: loaded latency probes start this soon, so the
	// ramp can see a standing queue early.
	latencyProbeStart = 200 * time.Millisecond
	// loadedSampleEvery paces loaded latency probes: ten a second, as
	// networkQuality does, without adding load of their own.
	loadedSampleEvery = 100 * time.Millisecond
	// rpmProbeEvery paces the responsiveness (RPM) probes under load.
	rpmProbeEvery = 200 * time.Millisecond
	// rpmProbeStart: RPM probes start once the load has built its queue,
	// when the loaded latency samples start to count too (loadWarmup): a
	// probe during the streams' slow start meets a line not yet working.
	rpmProbeStart = loadWarmup
	// rpmProbeTimeout: a probe slower than this counts at this value; the
	// draft caps probes at the test's end as well.
	rpmProbeTimeout = 3 * time.Second
	// trimKeepPct: the draft's trimmed mean keeps the fastest 95%.
	trimKeepPct = 95
	// measureReceiveBuffer is the load connections' socket receive buffer;
	// see measureserver.ReceiveBuffer for why it is fixed.
	measureReceiveBuffer = 4 << 20
)

// Default paths of a Tether measurement server, used when its
// /.well-known/nq document cannot be read.
const (
	pathConfig = "/.well-known/nq"
	pathIP     = "/ip"
	pathSmall  = "/small"
	pathLarge  = "/large"
	pathUpload = "/upload"
)

// Config configures a diagnostics Client. The zero value of each optional
// field means its default.
type Config struct {
	// Server is the measurement server's base URL (the gateway's API),
	// e.g. http://gw.example.com:8443. Required.
	Server string
	// STAMPPort is the server's STAMP reflector port; zero means 862.
	STAMPPort uint16
	// Router is the home router; the zero Addr means the default gateway
	// from the routing table, where the OS tells us.
	Router netip.Addr
	// Anchors are more latency targets.
	Anchors []Target
	// DNS configures the DNS health checks.
	DNS DNSConfig
	// WireGuardPort is the gateway's WireGuard UDP port, for the UDP
	// reachability check; zero skips it.
	WireGuardPort uint16
	// SSIDSalt, per installation, hashes the Wi-Fi network's name in the
	// report (network.wifi.ssid_hash); nil reports no hash at all.
	SSIDSalt []byte
	// CaptiveURL is a plain-HTTP URL that answers 204 No Content on an
	// open network (a captive portal answers otherwise); empty skips the
	// check.
	CaptiveURL string
	// TLS verifies an https:// server; nil means the system's roots. A
	// gateway with a self-signed certificate is trusted by its pin
	// (gwapi.PinnedTLS).
	TLS *tls.Config
	// Dial, when set, makes every TCP and UDP connection of the run:
	// a userspace tunnel's DialContext, to diagnose the path through the
	// tunnel. The router is then not probed (it is the host's), unless
	// Router is set.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Ping, with Dial, sends one ICMP echo the same way; without it a run
	// with Dial has no ICMP and falls back to STAMP and TCP.
	Ping func(ctx context.Context, dst netip.Addr) (time.Duration, error)
	// Netns runs socket-creating functions where the probes should run;
	// nil means here. The lab passes a namespace's Do.
	Netns Netns
	// Interface, when set (and Dial is not), binds every socket of the
	// run to that interface: one uplink of several, measured whatever
	// the default route says (see CompareUplinks). The router and the
	// network facts are then that interface's.
	Interface string
	// Mark, when not 0 (and Dial is not set), puts this firewall mark on
	// every socket of the run (SO_MARK; Linux, root): with a TUN tunnel
	// up, its policy routing and kill switch let marked traffic leave
	// outside it, so the run measures the path beside the tunnel (see
	// CompareTunnel).
	Mark uint32
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Progress, if set, is called as the run proceeds (from any
	// goroutine, never concurrently).
	Progress func(Progress)
}

// Progress is a running update for a person watching.
type Progress struct {
	Phase   string // "latency", "download", "upload", "done"
	Mbps    float64
	Streams int
	Elapsed time.Duration
}

// Client runs diagnostics. It is safe to Run more than once, not
// concurrently.
type Client struct {
	cfg    Config
	base   *url.URL
	logger *slog.Logger
	now    func() time.Time
	prober *Prober
	pmu    sync.Mutex

	urls serverURLs
	// serverCap is the server's advertised bandwidth guard; 0 for none.
	serverCap float64
	// h2c: the server speaks HTTP/2 without TLS; load streams use it, and
	// self probes ride them. Otherwise load streams use HTTP/1.1.
	h2c bool
}

type serverURLs struct{ small, large, upload string }

// New validates cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("netdiag: server: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("netdiag: server %q must be an http:// or https:// URL", cfg.Server)
	}
	if cfg.STAMPPort == 0 {
		cfg.STAMPPort = stamp.DefaultPort
	}
	c := &Client{cfg: cfg, base: u, logger: cfg.Logger, now: cfg.Now, prober: &Prober{Dial: cfg.Dial, Ping: cfg.Ping, Netns: cfg.Netns, Interface: cfg.Interface, Mark: cfg.Mark}}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.urls = serverURLs{small: c.resolve(pathSmall), large: c.resolve(pathLarge), upload: c.resolve(pathUpload)}
	return c, nil
}

func (c *Client) resolve(path string) string {
	return c.base.ResolveReference(&url.URL{Path: path}).String()
}

func (c *Client) progress(p Progress) {
	if c.cfg.Progress == nil {
		return
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.cfg.Progress(p)
}

// Run measures the line and returns the report. It never returns a nil
// report: what could not be measured is in report.Report.Errors.
func (c *Client) Run(ctx context.Context, mode report.Mode) *report.Report {
	deadline := fullDeadline
	if mode == report.ModeQuick {
		deadline = quickDeadline
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	rep := &report.Report{Schema: report.Schema, StartedAt: c.now().UTC(), Mode: mode, Server: c.cfg.Server, Thresholds: defaultThresholds()}
	defer func() {
		rep.DurationMS = time.Since(start).Milliseconds()
		rep.Verdicts, rep.Suggestions = judge(rep, c.cfg.DNS.ExpectFiltered)
		rep.Summary = summarize(rep)
		c.progress(Progress{Phase: "done", Elapsed: time.Since(start)})
	}()

	// Stage 1, concurrently: the server's config and idle latency to every
	// target. Nothing else loads the line yet.
	c.progress(Progress{Phase: "latency"})
	gw, err := c.gatewayTarget(ctx)
	if err != nil {
		rep.Errors = append(rep.Errors, report.ProbeError{Probe: "gateway", Error: err.Error()})
		return rep
	}
	targets := []Target{gw}
	if r := c.router(); r.IsValid() {
		targets = append([]Target{{Name: "router", Addr: r, TCPPort: 53}}, targets...)
	}
	targets = append(targets, c.cfg.Anchors...)
	results := make([]report.LatencyTarget, len(targets))
	var wg sync.WaitGroup
	var cfgErr error
	if mode == report.ModeFull {
		wg.Add(1)
		go func() { defer wg.Done(); cfgErr = c.fetchConfig(ctx) }()
	}
	for i, t := range targets {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = c.prober.Measure(ctx, t, idleSampling) }()
	}
	// DNS, the path and the local network need no load either: measure
	// them alongside.
	c.checkAside(ctx, mode, gw, rep, &wg)
	wg.Wait()
	rep.Latency.Targets = results
	if n := rep.Network; n != nil {
		for _, t := range results {
			if t.Method == report.MethodNone {
				continue
			}
			v := t.MedianMS
			switch t.Name {
			case "router":
				n.RouterMS = &v
			case "gateway":
				n.GatewayMS = &v
			}
		}
	}
	gwIdx := 0
	for i, t := range targets {
		if t.Name == "gateway" {
			gwIdx = i
		}
		if results[i].Error != "" && results[i].Method == report.MethodNone {
			rep.Errors = append(rep.Errors, report.ProbeError{Probe: "latency " + t.Name, Error: results[i].Error})
		}
	}
	gwMethod := results[gwIdx].Method
	resp := &report.ResponsivenessReport{IdleMS: results[gwIdx].MedianMS, Method: gwMethod}
	rep.Responsiveness = resp
	if mode == report.ModeQuick {
		return rep
	}
	if cfgErr != nil {
		rep.Errors = append(rep.Errors, report.ProbeError{Probe: "throughput", Error: cfgErr.Error()})
		return rep
	}

	// Stages 2 and 3, one after the other: each direction saturated, with
	// latency and RPM probes riding along.
	tp := &report.ThroughputReport{Stable: true, ServerCapMbps: c.serverCap}
	rep.Throughput = tp
	var foreign []foreignSample
	var self []time.Duration
	for _, dir := range []direction{download, upload} {
		lr := c.loadPhase(ctx, dir, gw, gwMethod, time.Duration(resp.IdleMS*float64(time.Millisecond)))
		if dir == download {
			tp.Download, tp.DownloadMbps, resp.LoadedDownMS = lr.dir, lr.dir.Mbps, lr.loadedMS
		} else {
			tp.Upload, tp.UploadMbps, resp.LoadedUpMS = lr.dir, lr.dir.Mbps, lr.loadedMS
		}
		tp.Streams = max(tp.Streams, lr.dir.Streams)
		tp.Bytes += lr.dir.Bytes
		tp.Stable = tp.Stable && lr.dir.Stable
		if lr.dir.Error != "" {
			rep.Errors = append(rep.Errors, report.ProbeError{Probe: dir.String(), Error: lr.dir.Error})
		}
		foreign = append(foreign, lr.foreign...)
		self = append(self, lr.self...)
	}
	resp.ForeignProbes, resp.SelfProbes = len(foreign), len(self)
	r := rpm(foreign, self)
	resp.RPM = r.rpm
	resp.ForeignTCPMS, resp.ForeignTLSMS, resp.ForeignHTTPMS, resp.SelfHTTPMS = ms(r.tcp), ms(r.tls), ms(r.http), ms(r.self)
	if resp.LoadedDownMS > 0 || resp.LoadedUpMS > 0 {
		inc := max(resp.LoadedDownMS, resp.LoadedUpMS) - resp.IdleMS
		resp.IncreaseMS = round3(max(inc, 0))
		resp.BufferbloatGrade = BufferbloatGrade(time.Duration(resp.IncreaseMS * float64(time.Millisecond)))
	}
	return rep
}

// gatewayTarget is the measurement server's host as a latency target.
func (c *Client) gatewayTarget(ctx context.Context) (Target, error) {
	host := c.base.Hostname()
	addr, err := netip.ParseAddr(host)
	if err != nil {
		var addrs []netip.Addr
		err = c.cfg.Netns.run(func() error {
			var rerr error
			addrs, rerr = c.prober.resolver().LookupNetIP(ctx, "ip", host)
			return rerr
		})
		if err != nil || len(addrs) == 0 {
			return Target{}, fmt.Errorf("cannot resolve the gateway %q: %w; check DNS with `tether diag` on another network", host, err)
		}
		addr = addrs[0]
	}
	return Target{Name: "gateway", Addr: addr.Unmap(), STAMPPort: c.cfg.STAMPPort, TCPPort: uint16(c.serverPort())}, nil
}

func (c *Client) router() netip.Addr {
	if c.cfg.Router.IsValid() {
		return c.cfg.Router
	}
	if c.cfg.Dial != nil {
		return netip.Addr{} // the host's router is not on the caller's network
	}
	var r netip.Addr
	_ = c.cfg.Netns.run(func() error {
		if c.cfg.Interface != "" {
			r, _ = gatewayOn(c.cfg.Interface)
		} else {
			r, _ = defaultGateway()
		}
		return nil
	})
	return r
}

// fetchConfig reads the server's responsiveness config document and takes
// its URLs, so any server speaking the draft works.
func (c *Client) fetchConfig(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, configTimeout)
	defer cancel()
	hc := c.plainClient()
	defer hc.CloseIdleConnections()
	cfgURL := c.resolve(pathConfig)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfgURL, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("measurement server %s is unreachable: %w", c.cfg.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("measurement server %s: %s answered %s; is this a Tether gateway?", c.cfg.Server, pathConfig, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("measurement server %s: %s: %w", c.cfg.Server, pathConfig, err)
	}
	urls, capMbps, err := parseConfigDoc(body)
	if err != nil {
		return fmt.Errorf("measurement server %s: %w", c.cfg.Server, err)
	}
	c.urls, c.serverCap = urls, capMbps
	c.h2c = c.probeH2C(ctx)
	return nil
}

// parseConfigDoc reads a responsiveness config document (the IETF
// draft's /.well-known/nq): the small, large and upload URLs under their
// current names (-06) or their original ones (-00), and a Tether
// gateway's bandwidth guard.
func parseConfigDoc(body []byte) (serverURLs, float64, error) {
	var doc struct {
		URLs struct {
			Small  string `json:"small_download_url"`
			Large  string `json:"large_download_url"`
			Upload string `json:"upload_url"`
		} `json:"urls"`
		// A Tether gateway's bandwidth guard, which caps what any line
		// can show against it.
		CapMbps float64 `json:"tether_rate_cap_mbps"`
	}
	var old struct {
		URLs struct {
			Small  string `json:"small_https_download_url"`
			Large  string `json:"large_https_download_url"`
			Upload string `json:"https_upload_url"`
		} `json:"urls"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return serverURLs{}, 0, fmt.Errorf("bad %s: %w", pathConfig, err)
	}
	_ = json.Unmarshal(body, &old)
	for _, p := range []struct{ cur, old *string }{{&doc.URLs.Small, &old.URLs.Small}, {&doc.URLs.Large, &old.URLs.Large}, {&doc.URLs.Upload, &old.URLs.Upload}} {
		if *p.cur == "" {
			*p.cur = *p.old
		}
	}
	for _, u := range []*string{&doc.URLs.Small, &doc.URLs.Large, &doc.URLs.Upload} {
		if *u == "" {
			return serverURLs{}, 0, fmt.Errorf("%s lacks a URL", pathConfig)
		}
		p, err := url.Parse(*u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return serverURLs{}, 0, fmt.Errorf("%s lists a bad URL %q", pathConfig, *u)
		}
	}
	capMbps := doc.CapMbps
	if capMbps < 0 || capMbps != capMbps || capMbps > 1e7 {
		capMbps = 0 // nonsense: no cap known
	}
	return serverURLs{small: doc.URLs.Small, large: doc.URLs.Large, upload: doc.URLs.Upload}, capMbps, nil
}

// probeH2C reports whether the small object can be fetched over h2c.
// Servers that only speak HTTP/1.1 on plain HTTP (a stock nginx) answer
// the preface with an error.
func (c *Client) probeH2C(ctx context.Context) bool {
	if !strings.HasPrefix(c.urls.small, "http://") {
		return false
	}
	tr := &http.Transport{DialContext: c.prober.dial, Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	_, ok := c.timedGet(ctx, &http.Client{Transport: tr}, true)
	return ok
}

// tlsConfig is a copy of the configured TLS settings for one transport;
// nil means Go's defaults.
func (c *Client) tlsConfig() *tls.Config {
	if c.cfg.TLS == nil {
		return nil
	}
	return c.cfg.TLS.Clone()
}

// plainClient is an HTTP/1.1 client whose connections are made in Netns.
func (c *Client) plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: c.prober.dial, DisableCompression: true, TLSClientConfig: c.tlsConfig()}}
}

// loadClient is one load stream's client: its own transport and so its
// own connection. Over http:// it speaks HTTP/2 without TLS (h2c), so
// probes can share the loaded connection as the draft's "self" probes do.
func (c *Client) loadClient(conns *connSet) *http.Client {
	tr := &http.Transport{
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
		TLSClientConfig:    c.tlsConfig(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := c.prober.dial(ctx, network, addr)
			if err == nil {
				// As the server does for uploads: a fixed window so
				// receive autotuning never caps a download below the
				// line's rate or its queue.
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetReadBuffer(measureReceiveBuffer)
				}
				setCongestionControl(conn)
				conns.add(conn)
			}
			return conn, err
		},
	}
	if c.h2c && strings.HasPrefix(c.urls.large, "http://") {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

// loadResult is one direction's load phase.
type loadResult struct {
	dir      *report.DirectionReport
	loadedMS float64
	foreign  []foreignSample
	self     []time.Duration
}

// loadPhase saturates one direction and, riding along, samples latency to
// the gateway and runs RPM probes.
func (c *Client) loadPhase(ctx context.Context, dir direction, gw Target, method string, idle time.Duration) loadResult {
	lt := &loadTest{c: c, dir: dir, idle: idle, budget: directionBudget}
	if dl, ok := ctx.Deadline(); ok && dir == upload {
		// The upload, last, may use what the download left of the run's
		// budget: slow uplinks need it most.
		lt.budget = min(max(directionBudget, time.Until(dl)-finishReserve), maxDirectionBudget)
	}
	if c.prober.byName(method) != nil {
		lt.lat = &latencyTracker{}
	}
	loadCtx, stopProbes := context.WithCancel(ctx)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		res loadResult
	)
	if m := c.prober.byName(method); m != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-loadCtx.Done():
				return
			case <-time.After(latencyProbeStart):
			}
			n := int(directionBudget / loadedSampleEvery)
			_, _, _ = m(loadCtx, gw, Sampling{Count: n, Interval: loadedSampleEvery, Wait: loadedSampleEvery, OnSample: lt.lat.add})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		f, s := c.rpmProbes(loadCtx, lt)
		mu.Lock()
		res.foreign, res.self = f, s
		mu.Unlock()
	}()
	loadStart := time.Now()
	res.dir = lt.run(ctx)
	stopProbes()
	wg.Wait()
	if lt.lat != nil {
		if m, n := lt.lat.medianSince(loadStart.Add(loadWarmup)); n > 0 {
			res.loadedMS = ms(m)
		}
	}
	return res
}

// rpmProbes runs the draft's probes until ctx ends: "foreign" ones on new
// connections (TCP handshake, TLS handshake, then an HTTP GET of the
// small object, each timed) and "self" ones on the loaded connections,
// which HTTP/2 multiplexes (h2 over TLS, h2c over plain HTTP).
func (c *Client) rpmProbes(ctx context.Context, lt *loadTest) (foreign []foreignSample, self []time.Duration) {
	select {
	case <-ctx.Done():
		return nil, nil
	case <-time.After(rpmProbeStart):
	}
	tick := time.NewTicker(rpmProbeEvery)
	defer tick.Stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	selfOK := c.h2c || strings.HasPrefix(c.urls.small, "https://")
	for i := 0; ; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if f, ok := c.foreignProbe(ctx); ok {
				mu.Lock()
				foreign = append(foreign, f)
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			if hc := lt.selfClient(i); hc != nil && selfOK {
				// Only on a loaded HTTP/2 connection: an HTTP/1.1 one
				// is busy, and the GET would open a new connection,
				// which is no self probe.
				if d, ok := c.timedGet(ctx, hc, true); ok {
					mu.Lock()
					self = append(self, d)
					mu.Unlock()
				}
			}
		}()
		select {
		case <-ctx.Done():
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			return foreign, self
		case <-tick.C:
		}
	}
}

// foreignSample is one foreign probe's three times; tls is zero over
// plain HTTP.
type foreignSample struct{ tcp, tls, http time.Duration }

// foreignProbe times, on a new connection, the TCP handshake, the TLS
// handshake (over https) and one HTTP GET of the small object, each on
// its own, as the draft's foreign probes do.
func (c *Client) foreignProbe(ctx context.Context) (foreignSample, bool) {
	var f foreignSample
	u, err := url.Parse(c.urls.small)
	if err != nil {
		return f, false
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	pctx, cancel := context.WithTimeout(ctx, rpmProbeTimeout)
	defer cancel()
	start := time.Now()
	conn, err := c.prober.dial(pctx, "tcp", host)
	if err != nil {
		return f, false
	}
	f.tcp = time.Since(start)
	used := false
	once := func(context.Context, string, string) (net.Conn, error) {
		if used {
			return nil, errors.New("probe connection already used")
		}
		used = true
		return conn, nil
	}
	tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
	if u.Scheme == "https" {
		cfg := c.tlsConfig()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"h2", "http/1.1"}
		tc := tls.Client(conn, cfg)
		start = time.Now()
		if err := tc.HandshakeContext(pctx); err != nil {
			conn.Close()
			return f, false
		}
		f.tls = time.Since(start)
		conn = tc
		tr.ForceAttemptHTTP2 = true
		tr.DialTLSContext = once
	} else {
		tr.DialContext = once
	}
	defer tr.CloseIdleConnections()
	d, ok := c.timedGet(pctx, &http.Client{Transport: tr}, false)
	if !ok {
		conn.Close()
		return f, false
	}
	f.http = d
	return f, true
}

// timedGet times a GET of the small object, body included; h2 refuses
// an answer that did not come over HTTP/2.
func (c *Client) timedGet(ctx context.Context, hc *http.Client, h2 bool) (time.Duration, bool) {
	ctx, cancel := context.WithTimeout(ctx, rpmProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.urls.small, nil)
	if err != nil {
		return 0, false
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || (h2 && resp.ProtoMajor != 2) {
		return 0, false
	}
	return time.Since(start), true
}

// rpmResult is RPM and the trimmed means behind it.
type rpmResult struct {
	rpm                  int
	tcp, tls, http, self time.Duration
}

// rpm is the draft's responsiveness (draft-ietf-ippm-responsiveness,
// "Responsiveness = 60000 / (1/6*(TM(tcp_f) + TM(tls_f) + TM(http_f)) +
// 1/2*TM(http_s))"), TM the trimmed mean that keeps the fastest 95%:
// the foreign probes' three times weigh a sixth each, the self probes a
// half. Over plain HTTP there is no TLS term: the foreign half is split
// between TCP and HTTP. Without self probes (an HTTP/1.1 server) the
// foreign probes decide alone, and the other way round.
func rpm(foreign []foreignSample, self []time.Duration) rpmResult {
	var r rpmResult
	var tcps, tlss, https []time.Duration
	for _, f := range foreign {
		tcps, https = append(tcps, f.tcp), append(https, f.http)
		if f.tls > 0 {
			tlss = append(tlss, f.tls)
		}
	}
	r.tcp, r.http, r.self = trimmedMean(tcps, trimKeepPct), trimmedMean(https, trimKeepPct), trimmedMean(self, trimKeepPct)
	if len(tlss) > 0 {
		r.tls = trimmedMean(tlss, trimKeepPct)
	}
	var foreignTerm time.Duration
	switch {
	case len(foreign) == 0:
	case len(tlss) > 0:
		foreignTerm = (r.tcp + r.tls + r.http) / 3
	default:
		foreignTerm = (r.tcp + r.http) / 2
	}
	var d time.Duration
	switch {
	case len(foreign) == 0 && len(self) == 0:
		return r
	case len(self) == 0:
		d = foreignTerm
	case len(foreign) == 0:
		d = r.self
	default:
		d = (foreignTerm + r.self) / 2
	}
	if d > 0 {
		r.rpm = int(float64(time.Minute) / float64(d))
	}
	return r
}

package netdiag

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// The UDP loss series: more probes than the idle latency's ten, because
// ten cannot tell 2% loss from none. A hundred at 10 ms take a second,
// as the idle stage does; at 10% loss the chance of seeing none is 3 in
// 100,000 (binomial). --quick sends sixty (2 in 1,000).
const (
	lossProbes      = 100
	lossQuickProbes = 60
	lossInterval    = 10 * time.Millisecond
	lossWait        = 300 * time.Millisecond
)

// checkAside starts the gateway's service, DNS, path and local-network
// checks on wg; they fill rep's Service, DNS, Path and Network when wg is
// done.
func (c *Client) checkAside(ctx context.Context, mode report.Mode, gw Target, rep *report.Report, wg *sync.WaitGroup) {
	var mu sync.Mutex
	path := &report.PathReport{}
	rep.Path = path
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	run(func() {
		sr := c.checkService(ctx)
		mu.Lock()
		rep.Service = sr
		mu.Unlock()
	})
	if !c.cfg.DNS.Off {
		run(func() {
			d := c.dnsReport(ctx, mode)
			mu.Lock()
			rep.DNS = d
			mu.Unlock()
		})
	}
	if c.cfg.WireGuardPort != 0 {
		run(func() {
			u := c.udpReach(ctx, gw.Addr, c.cfg.WireGuardPort)
			mu.Lock()
			path.UDP = u
			mu.Unlock()
		})
	}
	if gw.STAMPPort != 0 {
		run(func() {
			l := c.udpLoss(ctx, gw, mode)
			mu.Lock()
			path.Loss = l
			mu.Unlock()
		})
		if mode == report.ModeFull && c.cfg.Dial == nil {
			run(func() {
				m := c.mtuSearch(ctx, gw.Addr, gw.STAMPPort)
				mu.Lock()
				path.MTU = m
				mu.Unlock()
			})
		}
	}
	if c.cfg.CaptiveURL != "" {
		run(func() {
			cp := c.captive(ctx, c.cfg.CaptiveURL)
			mu.Lock()
			path.Captive = cp
			mu.Unlock()
		})
	}
	run(func() {
		p := c.publicAddr(ctx)
		mu.Lock()
		path.Public = p
		mu.Unlock()
	})
	if c.cfg.Dial == nil {
		run(func() {
			v6 := c.ipv6(ctx, c.base.Hostname(), c.serverPort())
			var n *report.NetworkReport
			_ = c.cfg.Netns.run(func() error { n = localNetwork(c.cfg.Interface, c.cfg.SSIDSalt); return nil })
			mu.Lock()
			path.IPv6, rep.Network = v6, n
			mu.Unlock()
		})
	}
}

// dnsReport runs the DNS checks against the system resolvers and the
// company's.
func (c *Client) dnsReport(ctx context.Context, mode report.Mode) *report.DNSReport {
	cfg := c.cfg.DNS.withDefaults()
	var system []systemResolver
	for _, r := range cfg.Resolvers {
		system = append(system, systemResolver{r, "config"})
	}
	if cfg.Resolvers == nil {
		path := cfg.ResolvConf
		if path == "" {
			path = ResolvConfPath
		}
		var err error
		if system, err = systemResolvers(path); err != nil {
			return &report.DNSReport{Resolvers: []report.ResolverReport{{Role: "system", Error: "cannot find the system's resolvers: " + err.Error()}}}
		}
	}
	d := &dnsChecker{cfg: cfg, queries: dnsLatencyQueries, dial: c.prober.dial}
	if mode == report.ModeQuick {
		d.queries = dnsQuickQueries
	}
	if c.cfg.Dial == nil {
		// Through a caller's tunnel no home router can intercept; and the
		// probes would only test the tunnel's far end.
		d.intercept = cfg.InterceptProbes
		if d.intercept == nil {
			d.intercept = pickInterceptProbes(interceptCandidates, c.localPrefixes(), c.router())
		}
		d.listen = func() (net.PacketConn, error) { return c.prober.listenUDP(ctx) }
	}
	return d.run(ctx, system)
}

// udpLoss sends a STAMP series to the gateway and counts what came back.
func (c *Client) udpLoss(ctx context.Context, gw Target, mode report.Mode) *report.LossReport {
	n := lossProbes
	if mode == report.ModeQuick {
		n = lossQuickProbes
	}
	conn, err := c.prober.dial(ctx, "udp", netip.AddrPortFrom(gw.Addr, gw.STAMPPort).String())
	if err != nil {
		return nil
	}
	defer conn.Close()
	// An error with replies in hand is a cut-short series, still worth
	// its figure; with none, see below.
	res, _ := stamp.Probe(ctx, conn, stamp.ProbeConfig{Count: n, Interval: lossInterval, Wait: lossWait})
	if res.Sent == 0 || len(res.RTTs) == 0 {
		// Nothing came back: no reflector, or no path at all. The
		// latency report says which; a loss figure would guess.
		return nil
	}
	st := Summarize(res.RTTs, res.Sent)
	return &report.LossReport{Method: report.MethodSTAMP, Sent: res.Sent, LossPct: st.LossPct, MedianMS: st.MedianMS, MinMS: st.MinMS}
}

// localPrefixes are the networks of this host's interfaces (in Netns).
func (c *Client) localPrefixes() []netip.Prefix {
	var out []netip.Prefix
	_ = c.cfg.Netns.run(func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(pn.IP)
				ones, _ := pn.Mask.Size()
				if p, err := ip.Unmap().Prefix(ones); err == nil {
					out = append(out, p)
				}
			}
		}
		return nil
	})
	return out
}

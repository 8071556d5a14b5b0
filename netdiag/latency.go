package netdiag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"

	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// Target is something to measure latency to.
type Target struct {
	Name string
	Addr netip.Addr
	// STAMPPort, when non-zero, is a STAMP reflector (RFC 8762) to try
	// when ICMP gets no answer.
	STAMPPort uint16
	// TCPPort, when non-zero, is a port to time TCP handshakes against as
	// the last resort; a refusal (RST) is an answer too.
	TCPPort uint16
}

// Sampling is how many probes a latency measurement sends, how often and
// how long it waits for the last answer.
type Sampling struct {
	Count    int
	Interval time.Duration
	Wait     time.Duration
	// OnSample, if set, is called with each round trip as it arrives.
	OnSample func(time.Duration)
}

// idleSampling: ten probes 100 ms apart keep the idle phase near one
// second, which the two-second --quick budget needs, and give a median and
// a p90 that mean something.
var idleSampling = Sampling{Count: 10, Interval: 100 * time.Millisecond, Wait: 500 * time.Millisecond}

// method measures round trips to one target one way.
type method func(ctx context.Context, t Target, s Sampling) (rtts []time.Duration, sent int, err error)

// latencyProber measures latency with the first method that answers.
type latencyProber struct {
	netns Netns
	// dialFn and pingFn replace the OS's sockets, e.g. with a userspace
	// tunnel's (Config.Dial and Config.Ping).
	dialFn func(ctx context.Context, network, addr string) (net.Conn, error)
	pingFn func(ctx context.Context, dst netip.Addr) (time.Duration, error)
}

func (p *latencyProber) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.dialFn != nil {
		return p.dialFn(ctx, network, addr)
	}
	return p.netns.dial(ctx, network, addr)
}

// measure runs every method concurrently (they are light and do not
// disturb each other) and reports the first, in order of preference
// (ICMP, STAMP, TCP), that got an answer. Running them side by side keeps
// a fallback from costing a second round of probing.
func (p *latencyProber) measure(ctx context.Context, t Target, s Sampling) (report.LatencyTarget, string) {
	out := report.LatencyTarget{Name: t.Name, Addr: t.Addr.String(), Method: report.MethodNone}
	ms := p.methods(t)
	type result struct {
		rtts []time.Duration
		sent int
		err  error
	}
	results := make([]result, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.rtts, r.sent, r.err = m.run(ctx, t, s)
		}()
	}
	wg.Wait()
	var errs []error
	for i, m := range ms {
		r := results[i]
		if len(r.rtts) > 0 {
			out.Method = m.name
			out.LatencyStats = Summarize(r.rtts, r.sent)
			return out, m.name
		}
		if r.err == nil {
			r.err = fmt.Errorf("no answer to %d probes", r.sent)
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.name, r.err))
	}
	out.Error = errors.Join(errs...).Error()
	return out, report.MethodNone
}

type namedMethod struct {
	name string
	run  method
}

func (p *latencyProber) methods(t Target) []namedMethod {
	ms := []namedMethod{{report.MethodICMP, p.icmp}}
	if t.STAMPPort != 0 {
		ms = append(ms, namedMethod{report.MethodSTAMP, p.stamp})
	}
	if t.TCPPort != 0 {
		ms = append(ms, namedMethod{report.MethodTCP, p.tcp})
	}
	return ms
}

// byName returns the method called name, for loaded probes that must use
// the method the idle probe used.
func (p *latencyProber) byName(name string) method {
	switch name {
	case report.MethodICMP:
		return p.icmp
	case report.MethodSTAMP:
		return p.stamp
	case report.MethodTCP:
		return p.tcp
	}
	return nil
}

// icmp pings with pro-bing: a raw socket when we may open one, else an
// unprivileged ICMP datagram socket (Linux ping_group_range, macOS).
func (p *latencyProber) icmp(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
	if p.pingFn != nil {
		return p.pingWith(ctx, t, s)
	}
	if p.dialFn != nil {
		// The OS's ICMP sockets would bypass the caller's network.
		return nil, 0, errors.New("icmp: not available on this network (no Ping given)")
	}
	privileged := os.Geteuid() == 0
	rtts, sent, err := p.ping(ctx, t, s, privileged)
	if err != nil && privileged && isPermission(err) {
		rtts, sent, err = p.ping(ctx, t, s, false)
	}
	return rtts, sent, err
}

func (p *latencyProber) ping(ctx context.Context, t Target, s Sampling, privileged bool) ([]time.Duration, int, error) {
	pinger := probing.New(t.Addr.String())
	pinger.SetPrivileged(privileged)
	pinger.Count = s.Count
	pinger.Interval = s.Interval
	pinger.Timeout = time.Duration(s.Count-1)*s.Interval + s.Wait
	pinger.RecordRtts = false
	var (
		mu   sync.Mutex
		rtts = make(map[int]time.Duration)
	)
	pinger.OnRecv = func(pkt *probing.Packet) {
		mu.Lock()
		rtts[pkt.Seq] = pkt.Rtt
		mu.Unlock()
		if s.OnSample != nil {
			s.OnSample(pkt.Rtt)
		}
	}
	var runErr error
	err := p.netns.run(func() error {
		runErr = pinger.RunWithContext(ctx)
		return nil
	})
	if err == nil {
		err = runErr
	}
	st := pinger.Statistics()
	mu.Lock()
	defer mu.Unlock()
	ordered := make([]time.Duration, 0, len(rtts))
	for seq := range st.PacketsSent {
		if d, ok := rtts[seq]; ok {
			ordered = append(ordered, d)
		}
	}
	if err != nil {
		return ordered, st.PacketsSent, fmt.Errorf("ping %v: %w", t.Addr, err)
	}
	return ordered, st.PacketsSent, nil
}

// pingWith sends s.Count echoes through pingFn, s.Interval apart, each
// waiting up to s.Wait, and returns the answers in the order sent.
func (p *latencyProber) pingWith(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
	rtts := make([]time.Duration, s.Count)
	var wg sync.WaitGroup
	sent := 0
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for i := range s.Count {
		if i > 0 {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, s.Wait)
			defer cancel()
			if d, err := p.pingFn(pctx, t.Addr); err == nil {
				rtts[i] = d
				if s.OnSample != nil {
					s.OnSample(d)
				}
			}
		}()
	}
	wg.Wait()
	var got []time.Duration
	for _, d := range rtts[:sent] {
		if d > 0 {
			got = append(got, d)
		}
	}
	return got, sent, nil
}

func isPermission(err error) bool {
	return errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
}

// stamp measures with RFC 8762 test packets to the target's reflector.
func (p *latencyProber) stamp(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
	addr := netip.AddrPortFrom(t.Addr, t.STAMPPort)
	conn, err := p.dial(ctx, "udp", addr.String())
	if err != nil {
		return nil, 0, fmt.Errorf("stamp: %w", err)
	}
	defer conn.Close()
	res, err := stamp.Probe(ctx, conn, stamp.ProbeConfig{Count: s.Count, Interval: s.Interval, Wait: s.Wait, OnReply: s.OnSample})
	return res.RTTs, res.Sent, err
}

// tcp times TCP handshakes: connect() returns after one round trip, on
// SYN-ACK or on RST, so a closed port measures as well as an open one.
func (p *latencyProber) tcp(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
	addr := netip.AddrPortFrom(t.Addr, t.TCPPort).String()
	var rtts []time.Duration
	var lastErr error
	sent := 0
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for i := 0; i < s.Count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return rtts, sent, ctx.Err()
			case <-tick.C:
			}
		}
		sent++
		cctx, cancel := context.WithTimeout(ctx, s.Interval+s.Wait)
		start := time.Now()
		c, err := p.dial(cctx, "tcp", addr)
		d := time.Since(start)
		cancel()
		switch {
		case err == nil:
			c.Close()
			rtts = append(rtts, d)
			if s.OnSample != nil {
				s.OnSample(d)
			}
		case errors.Is(err, syscall.ECONNREFUSED):
			rtts = append(rtts, d)
			if s.OnSample != nil {
				s.OnSample(d)
			}
		default:
			lastErr = err
		}
	}
	if len(rtts) == 0 && lastErr != nil {
		return nil, sent, fmt.Errorf("tcp %s: %w", addr, lastErr)
	}
	return rtts, sent, nil
}

// Netns runs fn where the probes' sockets must be created: a network
// namespace in the lab, or directly. Nil means directly.
type Netns func(fn func() error) error

func (n Netns) run(fn func() error) error {
	if n == nil {
		return fn()
	}
	return n(fn)
}

func (n Netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.run(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

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
	// Name names the target in the report: "router", "gateway" or an
	// anchor's name.
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
	// Count is how many probes each method sends; at least 1.
	Count int
	// Interval spaces the probes; it must be positive. TCP waits up to
	// Interval+Wait for each handshake.
	Interval time.Duration
	// Wait is how long an answer may take.
	Wait time.Duration
	// OnSample, if set, is called with each round trip as it arrives,
	// from the probing goroutines. Measure runs every method at once and
	// passes it every method's answers, so it may be called concurrently.
	OnSample func(time.Duration)
}

// idleSampling: ten probes 100 ms apart keep the idle phase near one
// second, which the two-second --quick budget needs, and give a median and
// a p90 that mean something.
var idleSampling = Sampling{Count: 10, Interval: 100 * time.Millisecond, Wait: 500 * time.Millisecond}

// ProbeWait bounds how long Probe waits for an answer: a round trip on
// any working path is well under a second, as the UDP reachability
// check's wait assumes too.
const ProbeWait = time.Second

// method measures round trips to one target one way.
type method func(ctx context.Context, t Target, s Sampling) (rtts []time.Duration, sent int, err error)

// Prober measures round trips to a Target with the first method that
// answers, in order of preference: ICMP echo, then the target's STAMP
// reflector (UDP, for networks that drop ICMP), then TCP handshakes. The
// zero Prober probes with this host's own sockets. A Prober is safe for
// concurrent use. netdiag's runs use it for the latency series; the
// monitor uses it for a single cheap probe (Probe).
type Prober struct {
	// Dial, when set, makes every TCP and UDP connection (a userspace
	// tunnel's DialContext); nil means this host's sockets, created in
	// Netns. With Dial and no Ping there is no ICMP: the host's ICMP
	// sockets would bypass Dial's network.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Ping, when set, sends one ICMP echo to dst and returns its round
	// trip (a userspace tunnel's Ping); nil means pro-bing on this host's
	// sockets (raw as root, else an unprivileged ICMP datagram socket),
	// unless Dial is set.
	Ping func(ctx context.Context, dst netip.Addr) (time.Duration, error)
	// Netns runs socket-creating functions where the probes should run;
	// nil means here.
	Netns Netns
	// Interface, when set and Dial is not, binds every socket to that
	// interface (SO_BINDTODEVICE on Linux, IP_BOUND_IF on macOS), to
	// measure one uplink of several.
	Interface string
	// Mark, when not 0, puts this firewall mark on every socket (Linux,
	// root): see Config.Mark.
	Mark uint32
}

// Sample is one answered probe.
type Sample struct {
	// Method is the probe that answered: report.MethodICMP,
	// report.MethodSTAMP or report.MethodTCP.
	Method string
	RTT    time.Duration
}

// Probe sends one probe to t by each method t allows, at once, waits up
// to ProbeWait (or until ctx ends), and returns the answer of the most
// preferred method that got one. Its error, when none did, says why for
// each method. It costs a packet or a handshake per method, so a monitor
// can call it every few seconds.
func (p *Prober) Probe(ctx context.Context, t Target) (Sample, error) {
	// With one probe, Interval only adds to TCP's wait: keep it small.
	name, rtts, _, err := p.first(ctx, t, Sampling{Count: 1, Interval: time.Millisecond, Wait: ProbeWait})
	if err != nil {
		return Sample{}, fmt.Errorf("netdiag: no answer from %s (%v): %w", t.Name, t.Addr, err)
	}
	return Sample{Method: name, RTT: rtts[0]}, nil
}

// ProbeWith sends one probe to t by method (report.MethodICMP, STAMP or
// TCP: what Probe chose), and only by it: a monitor that probes every few
// seconds sends one packet, not one per method.
func (p *Prober) ProbeWith(ctx context.Context, t Target, method string) (time.Duration, error) {
	m := p.byName(method)
	if m == nil {
		return 0, fmt.Errorf("netdiag: probe method %q: want icmp, stamp or tcp", method)
	}
	rtts, _, err := m(ctx, t, Sampling{Count: 1, Interval: time.Millisecond, Wait: ProbeWait})
	if err != nil {
		return 0, fmt.Errorf("netdiag: no %s answer from %s (%v): %w", method, t.Name, t.Addr, err)
	}
	if len(rtts) == 0 {
		return 0, fmt.Errorf("netdiag: no %s answer from %s (%v)", method, t.Name, t.Addr)
	}
	return rtts[0], nil
}

// Measure sends s to t by each method t allows, concurrently (they are
// light and do not disturb each other), and reports the most preferred
// method that got any answer, with the statistics of its round trips.
// Running them side by side keeps a fallback from costing a second round
// of probing. When none answered, Method is report.MethodNone and Error
// says why for each method.
func (p *Prober) Measure(ctx context.Context, t Target, s Sampling) report.LatencyTarget {
	out := report.LatencyTarget{Name: t.Name, Addr: t.Addr.String(), Method: report.MethodNone}
	name, rtts, sent, err := p.first(ctx, t, s)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Method, out.LatencyStats = name, Summarize(rtts, sent)
	return out
}

// first runs every method of t at once and returns the most preferred
// one with answers: its name, round trips in the order sent, and probes
// sent. With no answer at all, err joins each method's reason.
func (p *Prober) first(ctx context.Context, t Target, s Sampling) (string, []time.Duration, int, error) {
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
			return m.name, r.rtts, r.sent, nil
		}
		if r.err == nil {
			r.err = fmt.Errorf("no answer to %d probes", r.sent)
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.name, r.err))
	}
	return report.MethodNone, nil, 0, errors.Join(errs...)
}

// dial makes a connection with Dial, or in Netns.
func (p *Prober) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.Dial != nil {
		return p.Dial(ctx, network, addr)
	}
	d := net.Dialer{Control: p.control()}
	return p.Netns.dial(ctx, &d, network, addr)
}

// listenUDP opens a UDP socket in Netns, bound to Interface if set.
func (p *Prober) listenUDP(ctx context.Context) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: p.control()}
	var pc net.PacketConn
	err := p.Netns.run(func() error {
		var err error
		pc, err = lc.ListenPacket(ctx, "udp", ":0")
		return err
	})
	return pc, err
}

// control is what every socket of the prober gets before it connects:
// the binding to Interface and the firewall Mark, when set.
func (p *Prober) control() func(network, address string, c syscall.RawConn) error {
	var fns []func(network, address string, c syscall.RawConn) error
	if p.Interface != "" {
		fns = append(fns, bindControl(p.Interface))
	}
	if p.Mark != 0 {
		fns = append(fns, markControl(p.Mark))
	}
	if len(fns) == 0 {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		for _, fn := range fns {
			if err := fn(network, address, c); err != nil {
				return err
			}
		}
		return nil
	}
}

// resolver looks names up as the probes connect: in Netns, and over
// Interface or with Mark when set (the system's resolver would take the
// default route).
func (p *Prober) resolver() *net.Resolver {
	if p.Interface == "" && p.Mark == 0 && p.Dial == nil {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: p.dial}
}

type namedMethod struct {
	name string
	run  method
}

func (p *Prober) methods(t Target) []namedMethod {
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
func (p *Prober) byName(name string) method {
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
func (p *Prober) icmp(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
	if p.Ping != nil {
		return p.pingWith(ctx, t, s)
	}
	if p.Dial != nil {
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

func (p *Prober) ping(ctx context.Context, t Target, s Sampling, privileged bool) ([]time.Duration, int, error) {
	pinger := probing.New(t.Addr.String())
	pinger.SetPrivileged(privileged)
	pinger.InterfaceName = p.Interface
	if p.Mark != 0 {
		pinger.SetMark(uint(p.Mark))
	}
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
	err := p.Netns.run(func() error {
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

// pingWith sends s.Count echoes through Ping, s.Interval apart, each
// waiting up to s.Wait, and returns the answers in the order sent.
func (p *Prober) pingWith(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
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
			if d, err := p.Ping(pctx, t.Addr); err == nil {
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
func (p *Prober) stamp(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
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
func (p *Prober) tcp(ctx context.Context, t Target, s Sampling) ([]time.Duration, int, error) {
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

func (n Netns) dial(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.run(func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

package monitor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Defaults of a Monitor.
const (
	// DefaultInterval paces the probes: one every 2 s is ~0.7 kbit/s of
	// ICMP (or STAMP) to the gateway, well under the 2 kbit/s the
	// monitor may cost, and 30 samples in a one-minute window.
	DefaultInterval = 2 * time.Second
	// DefaultHistory is how long samples are kept: a day, in 12 bytes a
	// sample (about 520 KB at DefaultInterval).
	DefaultHistory = 24 * time.Hour
	// detectSpan is how much of the history each detection reads: long
	// enough for the baseline to stand from before a long saturation.
	detectSpan = time.Hour
)

// ErrSkip, from Probe, means there is nothing to probe now (not
// enrolled): no sample is taken, which is not a loss.
var ErrSkip = errors.New("monitor: nothing to probe")

// Options configure a Monitor.
type Options struct {
	// Probe times one round trip to the gateway (netdiag's prober, with
	// the method it chose once); an error is a lost probe.
	Probe func(ctx context.Context) (time.Duration, error)
	// Counters reads the uplink interface's total bytes, received plus
	// sent; ok false when unknown.
	Counters func() (bytes uint64, ok bool)
	// Interval is DefaultInterval if zero; History DefaultHistory.
	Interval time.Duration
	History  time.Duration
	// Config is DefaultConfig() if zero.
	Config Config
	// Now is the monotonic clock; nil means time since Run started.
	Now func() time.Duration
	// OnFinding gets the finding after each sample, from Run's goroutine.
	OnFinding func(Finding)
	Logger    *slog.Logger
}

// Monitor probes the path every Interval, keeps a bounded history and
// runs Detect over it.
type Monitor struct {
	opts Options

	mu      sync.Mutex
	hist    ring
	finding Finding
	sent    int           // probes sent, for the traffic estimate
	from    time.Duration // the current series' start
	now     func() time.Duration
	restart bool // a new series starts with the next sample
}

// Restart starts a new series with the next sample: a new network's
// samples are never judged with the last one's.
func (m *Monitor) Restart() {
	m.mu.Lock()
	m.restart = true
	m.mu.Unlock()
}

// New returns a monitor; Run starts it.
func New(opts Options) *Monitor {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.Config == (Config{}) {
		opts.Config = DefaultConfig()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{opts: opts, hist: newRing(int(opts.History / opts.Interval)), finding: Finding{Kind: KindUnknown, OwnMbps: -1}}
}

// Run samples until ctx ends. Call it once.
func (m *Monitor) Run(ctx context.Context) {
	now := m.clock()
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	var lastBytes uint64
	var lastAt time.Duration
	haveBytes := false
	for {
		pctx, cancel := context.WithTimeout(ctx, m.opts.Interval)
		rtt, err := m.opts.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrSkip) {
			haveBytes = false
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			continue
		}
		at := now()
		s := Sample{At: at, RTT: rtt, Lost: err != nil, OwnMbps: -1}
		if s.Lost {
			s.RTT = 0
		}
		if m.opts.Counters != nil {
			if b, ok := m.opts.Counters(); ok {
				if haveBytes && b >= lastBytes && at > lastAt {
					s.OwnMbps = float64(b-lastBytes) * 8 / (at - lastAt).Seconds() / 1e6
				}
				lastBytes, lastAt, haveBytes = b, at, true
			} else {
				haveBytes = false
			}
		}
		m.mu.Lock()
		if m.restart {
			m.from, m.restart = at, false
		}
		m.sent++
		m.hist.add(s)
		recent := m.hist.since(max(at-detectSpan, m.from))
		f := Detect(m.opts.Config, recent)
		m.finding = f
		m.mu.Unlock()
		if m.opts.OnFinding != nil {
			m.opts.OnFinding(f)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clock is the monitor's monotonic clock, started by the first call.
func (m *Monitor) clock() func() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.now == nil {
		m.now = m.opts.Now
		if m.now == nil {
			start := time.Now()
			m.now = func() time.Duration { return time.Since(start) }
		}
	}
	return m.now
}

// Now is a reading of the monitor's clock, which sample times are on.
func (m *Monitor) Now() time.Duration { return m.clock()() }

// Finding is the latest finding.
func (m *Monitor) Finding() Finding {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.finding
}

// Samples returns the history since monotonic time from, oldest first.
func (m *Monitor) Samples(from time.Duration) []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hist.since(from)
}

// Probes is how many probes the monitor has sent.
func (m *Monitor) Probes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent
}

// packed is a sample in 12 bytes: times in milliseconds (a monotonic
// reading fits 24 days), RTT in microseconds, own traffic in kbit/s.
type packed struct {
	atMS   uint32
	rttUS  uint32 // 0: lost
	ownKbs int32  // -1: unknown
}

// ring is a bounded history of samples.
type ring struct {
	buf        []packed
	next, size int
}

func newRing(n int) ring { return ring{buf: make([]packed, max(n, 1))} }

func (r *ring) add(s Sample) {
	p := packed{atMS: uint32(s.At / time.Millisecond), ownKbs: -1}
	if !s.Lost {
		p.rttUS = uint32(max(s.RTT/time.Microsecond, 1))
	}
	if s.OwnMbps >= 0 {
		p.ownKbs = int32(min(s.OwnMbps*1000, 1<<31-1))
	}
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	r.size = min(r.size+1, len(r.buf))
}

func (r *ring) since(from time.Duration) []Sample {
	out := make([]Sample, 0, r.size)
	for i := range r.size {
		p := r.buf[(r.next-r.size+i+len(r.buf))%len(r.buf)]
		at := time.Duration(p.atMS) * time.Millisecond
		if at < from {
			continue
		}
		s := Sample{At: at, RTT: time.Duration(p.rttUS) * time.Microsecond, Lost: p.rttUS == 0, OwnMbps: -1}
		if p.ownKbs >= 0 {
			s.OwnMbps = float64(p.ownKbs) / 1000
		}
		out = append(out, s)
	}
	return out
}

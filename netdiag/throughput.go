package netdiag

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// Throughput test parameters. The bounds come from the budget (a
// full run within 10 s) and from what Apple's networkQuality and the draft
// do: start with a few connections, add more while goodput grows, stop
// once it is stable.
const (
	// directionBudget bounds each direction, ramp-up included.
	directionBudget = 4 * time.Second
	// sampleEvery paces the byte counters.
	sampleEvery = 100 * time.Millisecond
	// checkEvery paces the ramp and stability decisions.
	checkEvery = 500 * time.Millisecond
	// window is the span each goodput figure averages over: long enough
	// to smooth TCP's sawtooth at 1 Mbit/s, short enough to fit the budget.
	window = time.Second
	// maxSampleSkew bounds how long reading the byte counters may take
	// for a sample to count: 1% of the 2 s result window at worst.
	maxSampleSkew = 20 * time.Millisecond
	// resultWindow is the span the reported goodput averages over once
	// stable.
	resultWindow = 2 * time.Second
	// stableChecks successive window figures within stableWithin of their
	// mean make the goodput stable.
	stableChecks = 3
	stableWithin = 0.05
	// rampGain: goodput that grew more than this since the last check
	// means more streams may help.
	rampGain = 0.10
	// initialStreams, rampStreams and maxStreams shape the parallel
	// streams. One stream first: if it alone builds a standing queue the
	// line is full, and more streams on a slow line only add loss and
	// retransmissions that eat the goodput we are measuring. Otherwise add
	// four at a time, as the draft's reference clients do; sixteen is
	// their ceiling too.
	initialStreams = 1
	rampStreams    = 4
	maxStreams     = 16
	// minLoad: a direction stays loaded at least this long, so loaded
	// latency is sampled for a second or more after loadWarmup.
	minLoad = 2500 * time.Millisecond
	// latencyStableWithin and latencyStableFloor: loaded latency is stable
	// when successive window medians agree within 10% or 5 ms, whichever
	// is looser (a few ms of noise on a short RTT is not growth).
	latencyStableWithin = 0.10
	latencyStableFloor  = 5 * time.Millisecond
	// capReached: goodput this close to the server's advertised guard is
	// the guard, not the line, and no more streams are added.
	capReached = 0.9
	// settleAfterRamp: after adding streams, wait this long before judging
	// stability, so the new streams' slow start is not mistaken for it.
	settleAfterRamp = time.Second
)

// direction of a load test.
type direction int

const (
	download direction = iota
	upload
)

func (d direction) String() string {
	if d == download {
		return "download"
	}
	return "upload"
}

// loadStream is one parallel transfer on its own connection.
type loadStream struct {
	client *http.Client // its own transport, so its own connection
	conns  *connSet     // the connections its transport dialed
	cancel context.CancelFunc
	done   chan struct{}
}

// connSet records the TCP connections a transport dials, to read their
// acknowledged-byte counters (upload goodput as the receiver saw it).
type connSet struct {
	mu    sync.Mutex
	conns []net.Conn
	acked map[net.Conn]int64 // highest count seen, kept after a close
}

// ackedTotal sums the peer-acknowledged bytes of every connection, never
// going backwards when a connection closes and stops reporting, or when
// a selectively acknowledged segment turns out shorter than an MSS.
func (s *connSet) ackedTotal() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acked == nil {
		s.acked = make(map[net.Conn]int64)
	}
	var n int64
	for _, c := range s.conns {
		if v := ackedBytes(c); v > s.acked[c] {
			s.acked[c] = v
		}
		n += s.acked[c]
	}
	return n
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

// loadTest saturates one direction with parallel streams until goodput is
// stable or the budget ends.
type loadTest struct {
	c   *Client
	dir direction

	mu      sync.Mutex
	streams []*loadStream
	errs    []error

	read    atomic.Int64 // download: body bytes read
	written atomic.Int64 // upload: body bytes handed to the transport
	// received is the upload bytes the server says it received, where it
	// reports progress: the count on connections whose acknowledgements
	// the OS cannot tell us. progress is progressUnknown until the first
	// answer says whether the server does; one that has not said so
	// within progressWait of the first upload (a server that answers only
	// when the body ends) never will, and the written bytes count.
	received   atomic.Int64
	progress   atomic.Int32
	upFirst    atomic.Int64 // unix nanoseconds of the first upload request
	upFirstSet sync.Once

	// lat receives the loaded latency samples; the line is saturated only
	// once they stop growing. Nil when no latency probe runs.
	lat *latencyTracker
	// idle is the idle RTT the loaded samples compare against.
	idle time.Duration
	// budget bounds the test; zero means directionBudget.
	budget time.Duration
}

// latencyTracker keeps time-stamped latency samples.
type latencyTracker struct {
	mu      sync.Mutex
	samples []timedRTT
}

type timedRTT struct {
	at  time.Time
	rtt time.Duration
}

func (t *latencyTracker) add(rtt time.Duration) {
	t.mu.Lock()
	t.samples = append(t.samples, timedRTT{time.Now(), rtt})
	t.mu.Unlock()
}

// medianSince is the median of samples taken after since, and how many.
func (t *latencyTracker) medianSince(since time.Time) (time.Duration, int) {
	t.mu.Lock()
	var v []time.Duration
	for _, s := range t.samples {
		if s.at.After(since) {
			v = append(v, s.rtt)
		}
	}
	t.mu.Unlock()
	slices.Sort(v)
	return median(v), len(v)
}

// queueing reports whether the latest loaded latency shows a standing
// queue: above idle by more than half again, and by more than the noise
// floor.
func (lt *loadTest) queueing(meds []time.Duration) bool {
	if len(meds) == 0 {
		return false
	}
	m := meds[len(meds)-1]
	return m > lt.idle+max(lt.idle/2, latencyStableFloor)
}

// latencySettled reports whether the last stableChecks window medians agree.
func latencySettled(meds []time.Duration) bool {
	if len(meds) < stableChecks {
		return false
	}
	last := meds[len(meds)-stableChecks:]
	var sum time.Duration
	for _, m := range last {
		sum += m
	}
	mean := sum / time.Duration(len(last))
	tol := max(time.Duration(float64(mean)*latencyStableWithin), latencyStableFloor)
	for _, m := range last {
		if m < mean-tol || m > mean+tol {
			return false
		}
	}
	return true
}

// sample is the cumulative byte count at a time.
type sample struct {
	at    time.Time
	bytes int64
}

// run returns the direction's report. It stops its streams before
// returning. onStable, if set, is called when the load is up (for the
// loaded latency probes).
func (lt *loadTest) run(ctx context.Context) *report.DirectionReport {
	budget := lt.budget
	if budget <= 0 {
		budget = directionBudget
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	defer lt.stopAll()
	start := time.Now()
	rep := &report.DirectionReport{Counting: "receiver"}
	if lt.dir == upload && !lt.countsAcked() {
		rep.Counting = "sender"
	}
	lt.addStreams(ctx, initialStreams)

	samples := []sample{{start, 0}}
	var checks []float64        // goodput (bit/s) at each check
	var latMeds []time.Duration // loaded latency window median at each check
	lastRamp := start
	nextCheck := start.Add(window)
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Out of time: goodput may still be stable even if loaded
			// latency had not settled.
			return lt.finish(rep, samples, isStable(checks) && time.Since(lastRamp) >= settleAfterRamp, start, lastRamp)
		case <-tick.C:
			// Stamp the sample when the counter is read, not when the
			// tick fired: on a busy machine this goroutine can run late,
			// and the tick's time with a later count overstated goodput
			// (1.15 Mbit/s on a 1 Mbit/s line in CI). Bracket the read
			// with the clock, too: a preemption between reading the
			// count and the clock stamped a sample late, which shortened
			// a window and overstated it again (1.15 once more). A
			// sample whose read took longer than maxSampleSkew is
			// dropped; the next tick takes another.
			t0 := time.Now()
			n := lt.count()
			now := time.Now()
			if now.Sub(t0) > maxSampleSkew {
				continue
			}
			now = t0.Add(now.Sub(t0) / 2)
			samples = append(samples, sample{now, n})
			if now.Before(nextCheck) {
				continue
			}
			nextCheck = now.Add(checkEvery)
			gp := goodput(samples, window)
			lt.c.progress(Progress{Phase: lt.dir.String(), Mbps: gp / 1e6, Streams: lt.nstreams(), Elapsed: now.Sub(start)})
			if lt.lat != nil {
				if m, n := lt.lat.medianSince(now.Add(-window)); n > 0 {
					latMeds = append(latMeds, m)
				}
			}
			// Add streams while goodput still grows. Latency that still
			// grows at a steady goodput is the queue filling: more streams
			// would only add loss, so wait for it instead.
			// A standing queue (latency well above idle) means the
			// bottleneck is already full: growth then is the streams'
			// start-up, not room for more.
			// At the server's advertised guard more streams cannot add
			// goodput, and they would overstate an upload: a guarded
			// server reads slower than the line delivers, so each new
			// connection's receive buffer fills, and is acknowledged,
			// ahead of the guard (94.7 Mbit/s against a 60 Mbit/s guard
			// in CI before this).
			atCap := lt.c.serverCap > 0 && gp >= lt.c.serverCap*1e6*capReached
			gpGrowing := len(checks) > 0 && gp > checks[len(checks)-1]*(1+rampGain)
			first := len(checks) == 0 && lastRamp.Equal(start)
			if (first || gpGrowing) && !atCap && !lt.queueing(latMeds) && lt.nstreams() < maxStreams {
				lt.addStreams(ctx, min(rampStreams, maxStreams-lt.nstreams()))
				lastRamp = now
				checks = checks[:0]
			}
			checks = append(checks, gp)
			saturated := lt.lat == nil || latencySettled(latMeds)
			if now.Sub(lastRamp) >= settleAfterRamp && now.Sub(start) >= minLoad && isStable(checks) && saturated {
				return lt.finish(rep, samples, true, start, lastRamp)
			}
			if err := lt.failed(); err != nil {
				rep.Error = err.Error()
				return lt.finish(rep, samples, false, start, lastRamp)
			}
		}
	}
}

func (lt *loadTest) finish(rep *report.DirectionReport, samples []sample, stable bool, start, lastRamp time.Time) *report.DirectionReport {
	if lt.dir == upload && !lt.countsAcked() && lt.progress.Load() == progressYes {
		rep.Counting = "receiver" // the server said what arrived
	}
	rep.Stable = stable
	rep.Streams = lt.nstreams()
	rep.Bytes = samples[len(samples)-1].bytes
	// Average over the last resultWindow, but not back across the last
	// ramp, whose new streams' slow start is not the line's rate; a second
	// at least, so a late ramp cannot leave a sliver.
	span := max(min(resultWindow, samples[len(samples)-1].at.Sub(lastRamp)), window)
	rep.Mbps = round2(goodput(samples, span) / 1e6)
	rep.DurationMS = time.Since(start).Milliseconds()
	if rep.Bytes == 0 && rep.Error == "" {
		if err := lt.failed(); err != nil {
			rep.Error = err.Error()
		} else {
			rep.Error = fmt.Sprintf("no bytes moved within %v", time.Since(start).Round(time.Millisecond))
		}
	}
	return rep
}

// goodput is the bit rate over the trailing span of samples (or all of
// them, when shorter).
func goodput(samples []sample, span time.Duration) float64 {
	last := samples[len(samples)-1]
	first := samples[0]
	for i := len(samples) - 1; i >= 0; i-- {
		first = samples[i]
		if last.at.Sub(samples[i].at) >= span {
			break
		}
	}
	d := last.at.Sub(first.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(last.bytes-first.bytes) * 8 / d
}

// isStable reports whether the last stableChecks figures agree within
// stableWithin of their mean.
func isStable(checks []float64) bool {
	if len(checks) < stableChecks {
		return false
	}
	last := checks[len(checks)-stableChecks:]
	var mean float64
	for _, v := range last {
		mean += v
	}
	mean /= float64(len(last))
	if mean <= 0 {
		return false
	}
	for _, v := range last {
		if v < mean*(1-stableWithin) || v > mean*(1+stableWithin) {
			return false
		}
	}
	return true
}

func (lt *loadTest) nstreams() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return len(lt.streams)
}

func (lt *loadTest) failed() error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	// A failure only matters when every stream has failed; one dropped
	// stream among several still leaves a saturated line.
	if len(lt.errs) >= len(lt.streams) && len(lt.errs) > 0 {
		return fmt.Errorf("%s: %w", lt.dir, lt.errs[0])
	}
	return nil
}

func (lt *loadTest) fail(err error) {
	lt.mu.Lock()
	lt.errs = append(lt.errs, err)
	lt.mu.Unlock()
}

// countsAcked: upload bytes are counted as the peer acknowledged them,
// which needs the OS's TCP sockets; a caller's Dial (a userspace tunnel)
// gives connections the OS knows nothing of.
func (lt *loadTest) countsAcked() bool {
	return ackedBytesSupported && lt.c.cfg.Dial == nil
}

// count is the bytes moved so far, as the receiver saw them where the OS
// tells us.
func (lt *loadTest) count() int64 {
	if lt.dir == download {
		return lt.read.Load()
	}
	if !lt.countsAcked() {
		switch lt.progress.Load() {
		case progressYes:
			return lt.received.Load()
		case progressUnknown:
			if first := lt.upFirst.Load(); first == 0 || time.Since(time.Unix(0, first)) < progressWait {
				return 0 // nothing known to have arrived yet
			}
			lt.progress.CompareAndSwap(progressUnknown, progressNo)
		}
		return lt.written.Load()
	}
	var n int64
	lt.mu.Lock()
	streams := append([]*loadStream(nil), lt.streams...)
	lt.mu.Unlock()
	for _, s := range streams {
		n += s.conns.ackedTotal()
	}
	return n
}

func (lt *loadTest) addStreams(ctx context.Context, n int) {
	for range n {
		sctx, cancel := context.WithCancel(ctx)
		conns := &connSet{}
		s := &loadStream{client: lt.c.loadClient(conns), conns: conns, cancel: cancel, done: make(chan struct{})}
		lt.mu.Lock()
		lt.streams = append(lt.streams, s)
		lt.mu.Unlock()
		go func() {
			defer close(s.done)
			var err error
			if lt.dir == download {
				err = lt.downloadLoop(sctx, s)
			} else {
				err = lt.uploadLoop(sctx, s)
			}
			if err != nil && sctx.Err() == nil {
				lt.fail(err)
			}
		}()
	}
}

func (lt *loadTest) stopAll() {
	lt.mu.Lock()
	streams := append([]*loadStream(nil), lt.streams...)
	lt.mu.Unlock()
	for _, s := range streams {
		s.cancel()
	}
	for _, s := range streams {
		<-s.done
		s.conns.abort() // before the transport closes them gracefully
		s.client.CloseIdleConnections()
	}
}

// abort resets every connection: what a finished load has not sent yet
// is dropped, not left to drain into the next phase's idle latency. A
// closed TCP connection still sends its send buffer; over a userspace
// tunnel, behind a slow bottleneck, that kept the queue full for seconds
// after the load (seen as 170 ms of idle latency through a 5 Mbit/s
// tunnel). Kernel sockets get SO_LINGER 0; a connection that can Abort
// (a userspace tunnel's, see tunnel.Userspace) aborts.
func (s *connSet) abort() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		switch c := c.(type) {
		case *net.TCPConn:
			_ = c.SetLinger(0)
			_ = c.Close()
		case interface{ Abort() }:
			c.Abort()
		default:
			_ = c.Close()
		}
	}
}

// selfClient returns a loaded stream's client, for probes on a loaded
// connection, or nil when there is none.
func (lt *loadTest) selfClient(i int) *http.Client {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if len(lt.streams) == 0 {
		return nil
	}
	return lt.streams[i%len(lt.streams)].client
}

// downloadLoop fetches the large object again and again, counting bytes.
func (lt *loadTest) downloadLoop(ctx context.Context, s *loadStream) error {
	buf := make([]byte, 64<<10)
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, lt.c.urls.large, nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", lt.c.urls.large, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("GET %s: server answered %s", lt.c.urls.large, resp.Status)
		}
		var got int64
		for {
			n, err := resp.Body.Read(buf)
			got += int64(n)
			lt.read.Add(int64(n))
			if err != nil {
				resp.Body.Close()
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, io.EOF) {
					if resp.ContentLength >= 0 && got != resp.ContentLength {
						return fmt.Errorf("GET %s: body ended after %d of %d bytes", lt.c.urls.large, got, resp.ContentLength)
					}
					break // a whole object: fetch the next
				}
				return fmt.Errorf("GET %s: after %d bytes: %w", lt.c.urls.large, got, err)
			}
		}
	}
	return nil
}

// uploadLoop posts an endless body until the context ends.
func (lt *loadTest) uploadLoop(ctx context.Context, s *loadStream) error {
	for ctx.Err() == nil {
		body := &countingReader{n: &lt.written, limit: maxUploadBody}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, lt.c.urls.upload, body)
		if err != nil {
			return err
		}
		req.ContentLength = -1 // streamed
		req.Header.Set("Content-Type", "application/octet-stream")
		if !lt.countsAcked() {
			// What we wrote is mostly sitting in send buffers we cannot
			// see into: ask the server what arrived.
			req.Header.Set(uploadProgressHeader, "1")
			lt.upFirstSet.Do(func() { lt.upFirst.Store(time.Now().UnixNano()) })
		}
		resp, err := s.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("POST %s: %w", lt.c.urls.upload, err)
		}
		if resp.StatusCode == http.StatusOK && resp.Header.Get(uploadProgressHeader) == "1" {
			lt.progress.CompareAndSwap(progressUnknown, progressYes)
			// The answer streams while the body is sent: end it when the
			// test ends (an HTTP/2 body read does not, while the request
			// body waits on flow control).
			stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
			err := readProgress(resp.Body, &lt.received)
			stop()
			resp.Body.Close()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("POST %s: %w", lt.c.urls.upload, err)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && ctx.Err() == nil {
			return fmt.Errorf("POST %s: server answered %s", lt.c.urls.upload, resp.Status)
		}
	}
	return nil
}

// uploadProgressHeader is measureserver.HeaderUploadProgress (the
// upload test through a caller's Dial fails if they disagree): the client
// does not link the server.
const uploadProgressHeader = "Tether-Upload-Progress"

// Whether the server reports upload progress (loadTest.progress).
const (
	progressUnknown int32 = iota
	progressYes
	progressNo
)

// progressWait is how long a server has to start its progress answer:
// ours answers at once, within a round trip.
const progressWait = 2 * time.Second

// readProgress reads an upload's progress lines, adding what each says
// arrived since the last to received, until the answer ends. A line that
// is not a count is the server's reason for cutting the upload.
func readProgress(body io.Reader, received *atomic.Int64) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 256), 4096)
	var last int64
	for sc.Scan() {
		n, err := strconv.ParseInt(strings.TrimSpace(sc.Text()), 10, 64)
		if err != nil {
			return fmt.Errorf("the server cut the upload: %s", strings.TrimSpace(sc.Text()))
		}
		if n < last {
			return fmt.Errorf("upload progress went back from %d to %d bytes", last, n)
		}
		received.Add(n - last)
		last = n
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// maxUploadBody keeps each upload under the server's default per-request
// cap (1 GiB); a faster line simply starts another request.
const maxUploadBody = 512 << 20

// payload is incompressible filler for uploads.
var payload = func() []byte {
	b := make([]byte, 256<<10)
	_, _ = rand.Read(b)
	return b
}()

type countingReader struct {
	n     *atomic.Int64
	sent  int64
	limit int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.sent >= r.limit {
		return 0, io.EOF
	}
	off := int(r.sent % int64(len(payload)))
	n := copy(p, payload[off:])
	if rem := r.limit - r.sent; int64(n) > rem {
		n = int(rem)
	}
	r.sent += int64(n)
	r.n.Add(int64(n))
	return n, nil
}

package netlab

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Relay defaults.
const (
	// relayMaxQueue bounds the rate limiter's FIFO: a packet that would wait
	// longer is tail-dropped, as a router's queue would drop it.
	relayMaxQueue = 200 * time.Millisecond
	// relaySessionIdle ends a client's session after this much silence, like
	// a NAT's UDP mapping timeout (RFC 4787 asks for at least 2 minutes;
	// the lab's flows are short, so a shorter bound keeps it tidy).
	relaySessionIdle = 60 * time.Second
	// relayMaxPacket is the largest UDP payload relayed.
	relayMaxPacket = 65535
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Target is where client packets are forwarded.
	Target netip.AddrPort
	// Impairment applies to each direction independently.
	Impairment Impairment
	// Seed makes loss and jitter reproducible; zero picks a random seed.
	Seed uint64
	// ListenUpstream opens the socket a client session uses toward Target.
	// Nil means net.ListenPacket("udp", ":0") in the caller's namespace.
	ListenUpstream func() (net.PacketConn, error)
	// Logger receives session events; nil discards them.
	Logger *slog.Logger
}

// RelayStats counts packets per direction.
type RelayStats struct {
	ToTarget, FromTarget   DirectionStats
	Sessions, OpenSessions int64
}

// DirectionStats counts one direction's packets.
type DirectionStats struct {
	In, Delivered, Lost, Dropped int64 // Lost: random loss; Dropped: queue overflow
}

// Relay is a userspace UDP relay that adds delay, jitter, loss and a rate
// limit, standing in for netem, which this kernel lacks. Each client
// address gets its own upstream socket, so replies find their way back.
type Relay struct {
	cfg    RelayConfig
	front  net.PacketConn
	logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	up, down *pipe

	mu       sync.Mutex
	sessions map[netip.AddrPort]*relaySession
	nsess    atomic.Int64
}

type relaySession struct {
	client   netip.AddrPort
	conn     net.PacketConn
	lastSeen atomic.Int64 // unix nanos
}

// NewRelay starts relaying packets that arrive on front. The relay owns
// front and closes it on Close.
func NewRelay(front net.PacketConn, cfg RelayConfig) (*Relay, error) {
	if err := cfg.Impairment.Validate(); err != nil {
		return nil, fmt.Errorf("netlab: relay: %w", err)
	}
	if !cfg.Target.IsValid() {
		return nil, errors.New("netlab: relay: no target address")
	}
	if cfg.ListenUpstream == nil {
		cfg.ListenUpstream = func() (net.PacketConn, error) { return net.ListenPacket("udp", ":0") }
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		cfg:      cfg,
		front:    front,
		logger:   logger,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[netip.AddrPort]*relaySession),
	}
	r.up = newPipe(cfg.Impairment, seed)
	r.down = newPipe(cfg.Impairment, seed^0x9e3779b97f4a7c15)
	r.wg.Add(3)
	go func() { defer r.wg.Done(); r.up.run(ctx) }()
	go func() { defer r.wg.Done(); r.down.run(ctx) }()
	go func() { defer r.wg.Done(); r.readFront() }()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() net.Addr { return r.front.LocalAddr() }

// Stats returns a snapshot of the counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	open := int64(len(r.sessions))
	r.mu.Unlock()
	return RelayStats{ToTarget: r.up.stats(), FromTarget: r.down.stats(), Sessions: r.nsess.Load(), OpenSessions: open}
}

// Close stops the relay, drops packets still in flight and waits for its
// goroutines.
func (r *Relay) Close() error {
	r.cancel()
	err := r.front.Close()
	r.mu.Lock()
	for _, s := range r.sessions {
		s.conn.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func (r *Relay) readFront() {
	buf := make([]byte, relayMaxPacket)
	for {
		n, addr, err := r.front.ReadFrom(buf)
		if err != nil {
			return
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		client := unmap(ua.AddrPort())
		s, err := r.session(client)
		if err != nil {
			r.logger.Warn("relay: cannot open upstream socket", "client", client, "err", err)
			continue
		}
		s.lastSeen.Store(time.Now().UnixNano())
		pkt := append([]byte(nil), buf[:n]...)
		r.up.send(pkt, func(p []byte) {
			_, _ = s.conn.WriteTo(p, net.UDPAddrFromAddrPort(r.cfg.Target))
		})
	}
}

func (r *Relay) session(client netip.AddrPort) (*relaySession, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[client]; ok {
		return s, nil
	}
	if r.ctx.Err() != nil {
		return nil, net.ErrClosed
	}
	conn, err := r.cfg.ListenUpstream()
	if err != nil {
		return nil, err
	}
	s := &relaySession{client: client, conn: conn}
	s.lastSeen.Store(time.Now().UnixNano())
	r.sessions[client] = s
	r.nsess.Add(1)
	r.wg.Add(1)
	go r.readUpstream(s)
	return s, nil
}

func (r *Relay) readUpstream(s *relaySession) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.sessions, s.client)
		r.mu.Unlock()
		s.conn.Close()
	}()
	buf := make([]byte, relayMaxPacket)
	clientAddr := net.UDPAddrFromAddrPort(s.client)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(relaySessionIdle))
		n, addr, err := s.conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && r.ctx.Err() == nil &&
				time.Since(time.Unix(0, s.lastSeen.Load())) < relaySessionIdle {
				continue
			}
			return
		}
		if ua, ok := addr.(*net.UDPAddr); !ok || unmap(ua.AddrPort()) != unmap(r.cfg.Target) {
			continue // only the target may answer through this mapping
		}
		s.lastSeen.Store(time.Now().UnixNano())
		pkt := append([]byte(nil), buf[:n]...)
		r.down.send(pkt, func(p []byte) { _, _ = r.front.WriteTo(p, clientAddr) })
	}
}

// pipe is one direction: random loss, then a FIFO bottleneck at the
// configured rate, then a delay line with jitter.
type pipe struct {
	im Impairment

	mu        sync.Mutex
	rng       *rand.Rand
	busyUntil time.Time
	seq       uint64
	queue     packetHeap
	wake      chan struct{}

	in, delivered, lost, dropped atomic.Int64
}

func newPipe(im Impairment, seed uint64) *pipe {
	return &pipe{im: im, rng: rand.New(rand.NewPCG(seed, seed>>1|1)), wake: make(chan struct{}, 1)}
}

func (p *pipe) stats() DirectionStats {
	return DirectionStats{In: p.in.Load(), Delivered: p.delivered.Load(), Lost: p.lost.Load(), Dropped: p.dropped.Load()}
}

func (p *pipe) send(pkt []byte, deliver func([]byte)) {
	p.in.Add(1)
	now := time.Now()
	p.mu.Lock()
	if p.im.Loss > 0 && p.rng.Float64() < p.im.Loss {
		p.mu.Unlock()
		p.lost.Add(1)
		return
	}
	due := now
	if p.im.Rate > 0 {
		start := now
		if p.busyUntil.After(start) {
			start = p.busyUntil
		}
		if start.Sub(now) > relayMaxQueue {
			p.mu.Unlock()
			p.dropped.Add(1)
			return
		}
		// Account the packet as it would cross an Ethernet link: payload
		// plus UDP, IPv4 and Ethernet headers.
		wire := int64(len(pkt)+8+20+14) * 8
		p.busyUntil = start.Add(time.Duration(wire * int64(time.Second) / int64(p.im.Rate)))
		due = p.busyUntil
	}
	due = due.Add(p.im.Delay)
	if p.im.Jitter > 0 {
		due = due.Add(time.Duration(p.rng.Int64N(int64(2*p.im.Jitter)+1)) - p.im.Jitter)
	}
	p.seq++
	heap.Push(&p.queue, &queued{due: due, seq: p.seq, pkt: pkt, deliver: deliver})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pipe) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var next *queued
		if len(p.queue) > 0 && !p.queue[0].due.After(time.Now()) {
			next = heap.Pop(&p.queue).(*queued)
		}
		wait := time.Hour
		if next == nil && len(p.queue) > 0 {
			wait = time.Until(p.queue[0].due)
		}
		p.mu.Unlock()
		if next != nil {
			next.deliver(next.pkt)
			p.delivered.Add(1)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

type queued struct {
	due     time.Time
	seq     uint64
	pkt     []byte
	deliver func([]byte)
}

// packetHeap orders packets by due time, then by arrival.
type packetHeap []*queued

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*queued)) }
func (h *packetHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// unmap turns an IPv4-mapped IPv6 address (what a dual-stack socket reports
// for an IPv4 peer) into plain IPv4, so addresses compare equal.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

package netdiag

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// Path MTU search parameters.
const (
	// mtuPerRound sizes a round narrow the range ninefold: 924 candidates
	// take four rounds.
	mtuPerRound = 8
	// mtuCopies is how many probes of each size a round sends, and
	// mtuConfirmCopies how many more a size gets before its silence is
	// taken for "too big" rather than loss. A wrong verdict needs all
	// five lost: one in 100,000 at 10% random loss.
	mtuCopies        = 2
	mtuConfirmCopies = 3
	// mtuFirstWait bounds the first round, which also measures the round
	// trip; later rounds wait mtuWaitRTTs round trips plus mtuWaitSlack
	// (for a slow uplink serialising a round), within mtuMinWait and
	// mtuMaxWait.
	mtuFirstWait = time.Second
	mtuWaitRTTs  = 3
	mtuWaitSlack = 50 * time.Millisecond
	mtuMinWait   = 100 * time.Millisecond
	mtuMaxWait   = time.Second
	// mtuMaxRounds and mtuBudget bound the search, confirmations
	// included, whatever the loss: a clean search takes about ten rounds,
	// 1 to 2 s at home-line round trips, alongside the idle latency
	// probes. Past the bounds it reports no figure.
	mtuMaxRounds = 16
	mtuBudget    = 3 * time.Second
)

// mtuProber sends DF-set STAMP probes padded to an IP size and records
// which sizes were echoed at that size. An echo counts whenever it
// arrives, even in a later round: a size that came back once fits.
type mtuProber struct {
	conn   net.Conn
	seq    uint32
	sizeOf map[uint32]int
	passed map[int]bool
	// local holds sizes the kernel refused to send (EMSGSIZE: above the
	// interface's own MTU), which need no confirming.
	local  map[int]bool
	rounds int
	wait   time.Duration
	rtt    time.Duration
	// cut is set once a round ends early because ctx did: its silence is
	// no evidence, and the search must stop.
	cut bool
}

// round sends copies probes of each size not yet known to pass and reads
// echoes until all have passed or wait ends.
func (m *mtuProber) round(ctx context.Context, sizes []int, copies int, wait time.Duration) {
	m.rounds++
	sent := map[uint32]time.Time{}
	var pending []int
	for _, s := range sizes {
		if m.passed[s] || m.local[s] {
			continue
		}
		pending = append(pending, s)
		for range copies {
			m.seq++
			now := time.Now()
			p, _ := stamp.SenderPacket{Seq: m.seq, Timestamp: now, ErrorEstimate: stamp.DefaultErrorEstimate}.MarshalBinary()
			p = append(p, make([]byte, s-ipUDPOverhead-len(p))...)
			if _, err := m.conn.Write(p); err != nil && isMsgSize(err) {
				m.local[s] = true
				break
			}
			m.sizeOf[m.seq] = s
			sent[m.seq] = now
		}
	}
	if len(pending) == 0 {
		return
	}
	if ctx.Err() != nil {
		m.cut = true
		return
	}
	// byCtx: the read deadline is ctx's, not the round's own, so a
	// timeout means the search ran out of time, not that sizes failed.
	deadline, byCtx := time.Now().Add(wait), false
	if d, ok := ctx.Deadline(); ok && !d.After(deadline) {
		deadline, byCtx = d, true
	}
	_ = m.conn.SetReadDeadline(deadline)
	buf := make([]byte, 2048)
	for !m.allPassed(pending) {
		n, err := m.conn.Read(buf)
		if err != nil {
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			if timeout || ctx.Err() != nil || stamp.Closed(err) {
				m.cut = m.cut || !timeout || byCtx || ctx.Err() != nil
				return
			}
			continue // e.g. ICMP "fragmentation needed" surfacing
		}
		rp, err := stamp.ParseReflector(buf[:n])
		if err != nil {
			continue
		}
		s, found := m.sizeOf[rp.SenderSeq]
		if !found || n+ipUDPOverhead != s {
			continue
		}
		m.passed[s] = true
		if at, ok := sent[rp.SenderSeq]; ok && m.rtt == 0 {
			// The first echo sets the round trip, and with it how long
			// this round still waits for the rest.
			m.rtt = time.Since(at)
			m.wait = min(max(mtuWaitRTTs*m.rtt+mtuWaitSlack, mtuMinWait), mtuMaxWait)
			if d := time.Now().Add(m.wait); d.Before(deadline) {
				deadline, byCtx = d, false
				_ = m.conn.SetReadDeadline(deadline)
			}
		}
	}
}

func (m *mtuProber) allPassed(sizes []int) bool {
	for _, s := range sizes {
		if !m.passed[s] && !m.local[s] {
			return false
		}
	}
	return true
}

// tooBig reports whether size s does not fit: the kernel refused it, or
// it went unanswered after mtuConfirmCopies more probes. It is false, and
// m.cut set, when the search ran out of time before it could tell.
func (m *mtuProber) tooBig(ctx context.Context, s int) bool {
	if m.passed[s] {
		return false
	}
	if !m.local[s] {
		m.round(ctx, []int{s}, mtuConfirmCopies, m.wait)
	}
	return !m.passed[s] && !m.cut
}

// mtuSearch finds the path MTU to the gateway's STAMP reflector with
// DF-set probes, several sizes a round. Loss is not size: a size counts
// as too big only when the kernel refuses it, or when it stays
// unanswered after mtuCopies+mtuConfirmCopies probes, and only the
// smallest silent size above the largest answered one is ever confirmed
// (any larger answered size proves the smaller silent ones were lost).
func (c *Client) mtuSearch(ctx context.Context, gw netip.Addr, port uint16) *report.MTUReport {
	r := &report.MTUReport{}
	conn, err := c.prober.dial(ctx, "udp", netip.AddrPortFrom(gw, port).String())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer conn.Close()
	if err := setDontFragment(conn); err != nil {
		r.Error = "cannot set DF on this system: " + err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, mtuBudget)
	defer cancel()
	m := &mtuProber{conn: conn, sizeOf: map[uint32]int{}, passed: map[int]bool{}, local: map[int]bool{}}
	// lo is known to fit; hi is the largest size not known to be too big.
	lo, hi := mtuLow, mtuHigh
	m.round(ctx, []int{lo, hi}, mtuCopies, mtuFirstWait)
	if !m.passed[lo] {
		m.round(ctx, []int{lo}, mtuConfirmCopies, mtuFirstWait)
	}
	if !m.passed[lo] {
		r.Error = "the gateway's STAMP reflector did not echo even a 576-byte probe"
		if m.cut {
			r.Error = "path MTU search: no echo before the deadline"
		}
		return r
	}
	if m.wait == 0 {
		// lo's only echo was a late one from an earlier round, so no
		// round trip was measured: wait the longest.
		m.wait = mtuMaxWait
	}
	switch {
	case m.tooBig(ctx, hi):
		hi--
	case m.passed[hi]:
		lo = hi
	}
	// raise moves lo up to the largest size in sizes that came back.
	raise := func(sizes []int) {
		for _, s := range sizes {
			if m.passed[s] {
				lo = max(lo, s)
			}
		}
	}
	var sizes []int
	for lo < hi && !m.cut && m.rounds < mtuMaxRounds {
		// Probe evenly inside (lo, hi]; the last round probes every size
		// left.
		sizes = sizes[:0]
		step := max((hi-lo)/(mtuPerRound+1), 1)
		if hi-lo <= mtuPerRound {
			step = 1
		}
		for s := lo + step; s <= hi && len(sizes) < mtuPerRound; s += step {
			sizes = append(sizes, s)
		}
		m.round(ctx, sizes, mtuCopies, m.wait)
		raise(sizes)
		// The smallest silent size above lo bounds hi, once confirmed.
		// If it answers after all, lo rises past it and the next is
		// tried.
		for _, s := range sizes {
			if s <= lo || m.cut {
				continue
			}
			if m.tooBig(ctx, s) {
				hi = s - 1
				break
			}
			raise(sizes) // its confirmation may have brought late echoes
		}
		hi = max(hi, lo)
	}
	if lo < hi {
		// Out of time or rounds: a guess would raise mtu_low on a lossy
		// line, so report the bounds and no figure.
		r.Error = fmt.Sprintf("path MTU search incomplete after %d rounds: %d bytes fit, %d is not known to", m.rounds, lo, hi)
		return r
	}
	r.PathMTU = lo
	r.TunnelMTU = lo - wireGuardOverhead
	return r
}

// isMsgSize: the kernel refused a datagram larger than the interface MTU.
func isMsgSize(err error) bool { return errors.Is(err, syscall.EMSGSIZE) }

package stamp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ProbeConfig configures Probe. Zero values mean the defaults noted.
type ProbeConfig struct {
	Count    int           // packets to send; zero means 10
	Interval time.Duration // between sends; zero means 100 ms
	Wait     time.Duration // for replies after the last send; zero means 1 s
	Now      func() time.Time
	// OnReply, if set, is called with each new round trip as it is
	// measured, from Probe's reader goroutine.
	OnReply func(time.Duration)
}

// Result is what a probe measured.
type Result struct {
	Sent       int
	RTTs       []time.Duration // of answered packets, in send order
	Lost       int
	Duplicates int
}

// Probe sends test packets on conn, a connected UDP socket to a reflector,
// and measures each round trip minus the reflector's dwell time (its
// transmit timestamp minus its receive timestamp; both come from the
// reflector's clock, so clock offsets cancel). It returns what it gathered
// and, when the context ends first, the context's error; when nothing
// answers, an error that says so.
func Probe(ctx context.Context, conn net.Conn, cfg ProbeConfig) (Result, error) {
	if cfg.Count <= 0 {
		cfg.Count = 10
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Wait <= 0 {
		cfg.Wait = time.Second
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	var (
		mu      sync.Mutex
		sentAt  = make(map[uint32]time.Time, cfg.Count)
		rtts    = make(map[uint32]time.Duration, cfg.Count)
		dups    int
		readErr error
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 9000)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := conn.Read(buf)
			at := now()
			if err != nil {
				var ne net.Error
				select {
				case <-done:
					return
				default:
				}
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				mu.Lock()
				readErr = err // e.g. ECONNREFUSED: nothing listens there
				mu.Unlock()
				if Closed(err) {
					return
				}
				continue
			}
			rp, err := ParseReflector(buf[:n])
			if err != nil {
				continue
			}
			mu.Lock()
			if t0, ok := sentAt[rp.SenderSeq]; ok {
				if _, seen := rtts[rp.SenderSeq]; seen {
					dups++
				} else {
					rtt := at.Sub(t0)
					if dwell := rp.Timestamp.Sub(rp.ReceiveTimestamp); dwell > 0 && dwell < rtt {
						rtt -= dwell
					}
					rtts[rp.SenderSeq] = rtt
					if cfg.OnReply != nil {
						cfg.OnReply(rtt)
					}
				}
			}
			mu.Unlock()
		}
	}()

	var res Result
	var ctxErr error
	pkt := make([]byte, 0, PacketLen)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
send:
	for i := 0; i < cfg.Count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				ctxErr = ctx.Err()
				break send
			case <-tick.C:
			}
		}
		seq := uint32(i)
		t := now()
		pkt, _ = SenderPacket{Seq: seq, Timestamp: t, ErrorEstimate: DefaultErrorEstimate}.AppendBinary(pkt[:0])
		mu.Lock()
		sentAt[seq] = t
		mu.Unlock()
		if _, err := conn.Write(pkt); err == nil {
			res.Sent++
		}
	}
	if ctxErr == nil {
		// Wait for the last replies, but stop early once all are in.
		deadline := time.NewTimer(cfg.Wait)
		defer deadline.Stop()
		poll := time.NewTicker(10 * time.Millisecond)
		defer poll.Stop()
	wait:
		for {
			mu.Lock()
			all := len(rtts) >= res.Sent
			mu.Unlock()
			if all {
				break
			}
			select {
			case <-ctx.Done():
				ctxErr = ctx.Err()
				break wait
			case <-deadline.C:
				break wait
			case <-poll.C:
			}
		}
	}
	close(done)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < cfg.Count; i++ {
		if d, ok := rtts[uint32(i)]; ok {
			res.RTTs = append(res.RTTs, d)
		}
	}
	res.Lost = res.Sent - len(res.RTTs)
	res.Duplicates = dups
	if ctxErr != nil {
		return res, fmt.Errorf("stamp: probing %v: %w", conn.RemoteAddr(), ctxErr)
	}
	if len(res.RTTs) == 0 {
		why := "UDP may be blocked or no STAMP reflector runs there"
		if readErr != nil {
			why = readErr.Error()
		}
		return res, fmt.Errorf("stamp: no reply from %v to %d packets within %v: %s", conn.RemoteAddr(), res.Sent, cfg.Wait, why)
	}
	return res, nil
}

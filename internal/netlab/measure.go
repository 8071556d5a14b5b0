package netlab

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// iperfPortBase is where the lab's iperf3 servers start; each server takes
// a fresh port because an iperf3 server runs one test at a time.
const iperfPortBase = 5201

var iperfPorts atomic.Int32

// IperfServer is an iperf3 server on the internet's speed host.
type IperfServer struct {
	Addr netip.AddrPort
}

// StartIperf3 starts an iperf3 server on the internet's speed host and waits
// until it listens.
func (l *Lab) StartIperf3(ctx context.Context) (*IperfServer, error) {
	port := iperfPortBase + int(iperfPorts.Add(1)) - 1
	addr := netip.AddrPortFrom(SpeedAddr, uint16(port))
	if _, err := l.Internet.Start("iperf3", "--server", "--bind", SpeedAddr.String(), "--port", strconv.Itoa(port)); err != nil {
		return nil, err
	}
	for {
		ok, err := l.Internet.listening(uint16(port))
		if err != nil {
			return nil, err
		}
		if ok {
			return &IperfServer{Addr: addr}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("netlab: iperf3 server on %v did not start: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listening reports whether a TCP socket listens on port in the namespace.
func (n *Namespace) listening(port uint16) (bool, error) {
	var found bool
	err := n.Do(func() error {
		// thread-self: /proc/self/net would show the main thread's namespace.
		b, err := os.ReadFile("/proc/thread-self/net/tcp")
		if err != nil {
			return fmt.Errorf("netlab: %w", err)
		}
		want := fmt.Sprintf(":%04X ", port)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is field 1, state is field 3; 0A is LISTEN.
			if len(f) > 3 && strings.HasSuffix(f[1]+" ", want) && f[3] == "0A" {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// IperfResult is what one iperf3 run measured at the receiver.
type IperfResult struct {
	Mbps     float64 // receiver goodput
	Retrans  int     // sender retransmissions (TCP)
	Duration time.Duration
}

// Iperf3 runs an iperf3 client in ns against srv. reverse measures the
// server→client direction (download for a home client).
func (l *Lab) Iperf3(ctx context.Context, ns *Namespace, srv *IperfServer, reverse bool, streams int, d time.Duration) (IperfResult, error) {
	args := []string{"--client", srv.Addr.Addr().String(), "--port", strconv.Itoa(int(srv.Addr.Port())),
		"--json", "--time", strconv.Itoa(int(d.Seconds())), "--omit", "1", "--parallel", strconv.Itoa(max(streams, 1)),
		"--congestion", LabCongestionControl}
	if reverse {
		args = append(args, "--reverse")
	}
	out, err := ns.Command(ctx, "iperf3", args...).Output()
	var rep struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Seconds       float64 `json:"seconds"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		return IperfResult{}, fmt.Errorf("netlab: iperf3 gave no report (%v): %w", err, jerr)
	}
	if rep.Error != "" {
		return IperfResult{}, fmt.Errorf("netlab: iperf3: %s", rep.Error)
	}
	if err != nil {
		return IperfResult{}, fmt.Errorf("netlab: iperf3: %w", err)
	}
	return IperfResult{
		Mbps:     rep.End.SumReceived.BitsPerSecond / 1e6,
		Retrans:  rep.End.SumSent.Retransmits,
		Duration: time.Duration(rep.End.SumReceived.Seconds * float64(time.Second)),
	}, nil
}

// RTTResult holds round-trip times from ProbeRTT.
type RTTResult struct {
	RTTs []time.Duration // sorted ascending
	Sent int
	Lost int
}

// Median returns the median RTT, or 0 when nothing came back.
func (r RTTResult) Median() time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	return r.RTTs[len(r.RTTs)/2]
}

// ProbeRTT sends count UDP probes from ns to the internet's echo service,
// one every interval, and measures their round trips. A probe not answered
// within wait counts as lost. It needs no ICMP privileges.
func (l *Lab) ProbeRTT(ctx context.Context, ns *Namespace, count int, interval, wait time.Duration) (RTTResult, error) {
	return ProbeUDPEcho(ctx, ns.DialContext, netip.AddrPortFrom(SpeedAddr, EchoPort), count, interval, wait)
}

// ProbeUDPEcho measures round trips to a UDP echo server. dial opens the
// socket (in a namespace, for the lab). Probes carry a sequence number, so
// late answers are matched to the right probe.
func ProbeUDPEcho(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), target netip.AddrPort, count int, interval, wait time.Duration) (RTTResult, error) {
	c, err := dial(ctx, "udp", target.String())
	if err != nil {
		return RTTResult{}, err
	}
	defer c.Close()
	var mu sync.Mutex // the race detector cannot see causality through the network
	sent := make([]time.Time, count)
	got := make([]time.Duration, count)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if n < 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[:8])
			mu.Lock()
			if seq < uint64(count) && got[seq] == 0 && !sent[seq].IsZero() {
				got[seq] = now.Sub(sent[seq])
			}
			mu.Unlock()
		}
	}()
	var lastSent time.Time
	pkt := make([]byte, 32)
	for i := 0; i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				c.Close()
				<-done
				return RTTResult{}, ctx.Err()
			case <-time.After(interval):
			}
		}
		binary.BigEndian.PutUint64(pkt, uint64(i))
		mu.Lock()
		sent[i] = time.Now()
		lastSent = sent[i]
		mu.Unlock()
		if _, err := c.Write(pkt); err != nil && !errors.Is(err, net.ErrClosed) {
			// A send error (e.g. ENOBUFS) counts the probe as lost.
			continue
		}
	}
	_ = c.SetReadDeadline(lastSent.Add(wait))
	<-done
	var res RTTResult
	res.Sent = count
	for i := range got {
		if got[i] == 0 || got[i] > wait {
			res.Lost++
			continue
		}
		res.RTTs = append(res.RTTs, got[i])
	}
	slices.Sort(res.RTTs)
	return res, nil
}

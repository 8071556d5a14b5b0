package tunnel

import (
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/conn"

	"github.com/tetherwfh/tether/internal/udpguard"
	"github.com/tetherwfh/tether/internal/wgprobe"
)

// probeQuiet is how long a test waits for answers that must not come.
const probeQuiet = 200 * time.Millisecond

// openProbeBind opens a gateway's bind (answering probes) on a real
// loopback socket and drains it as wireguard-go would.
func openProbeBind(t *testing.T, limits udpguard.Limits, now func() time.Time) (*countingBind, uint16) {
	t.Helper()
	b := &countingBind{Bind: conn.NewDefaultBind(), answerProbes: true, probeLimits: limits, probeNow: now}
	fns, port, err := b.Open(0)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(func() {
			packets := make([][]byte, b.BatchSize())
			for i := range packets {
				packets[i] = make([]byte, 1500)
			}
			sizes := make([]int, len(packets))
			eps := make([]conn.Endpoint, len(packets))
			for {
				if _, err := fn(packets, sizes, eps); errors.Is(err, net.ErrClosed) {
					return
				}
			}
		})
	}
	t.Cleanup(func() { _ = b.Close(); wg.Wait() })
	return b, port
}

func probeClient(t *testing.T, from string, port uint16) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("udp4", (&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}).String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// probeAnswers sends n probes on c and counts the answers.
func probeAnswers(t *testing.T, c net.Conn, n int) int {
	t.Helper()
	for i := range n {
		_, err := c.Write(wgprobe.Request([8]byte{byte(i)}))
		require.NoError(t, err)
	}
	got := 0
	buf := make([]byte, 64)
	for {
		_ = c.SetReadDeadline(time.Now().Add(probeQuiet))
		m, err := c.Read(buf)
		if err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded)
			return got
		}
		if _, err := wgprobe.ParseAnswer(buf[:m]); err == nil {
			got++
		}
	}
}

// TestProbeResponderNeverAnswersItsOwnPort: a probe whose source is the
// WireGuard socket itself (as a forged one would arrive) gets no answer,
// while a client's does.
func TestProbeResponderNeverAnswersItsOwnPort(t *testing.T) {
	b, port := openProbeBind(t, udpguard.Limits{}, nil)
	assert.Equal(t, 1, probeAnswers(t, probeClient(t, "127.0.0.1", port), 1), "a client is answered")
	self, err := b.ParseEndpoint((&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}).String())
	require.NoError(t, err)
	require.NoError(t, b.Bind.Send([][]byte{wgprobe.Request([8]byte{9})}, self))
	require.Eventually(t, func() bool { return b.probesRefused.Load() == 1 }, 5*time.Second, time.Millisecond)
	time.Sleep(probeQuiet)
	assert.EqualValues(t, 1, b.probesAnswered.Load(), "only the client was answered")
	assert.EqualValues(t, 1, b.probesRefused.Load())
}

// TestProbeResponderLimitsAFloodPerSource: past its burst a source gets
// no answers, while another source still does.
func TestProbeResponderLimitsAFloodPerSource(t *testing.T) {
	frozen := time.Unix(1_800_000_000, 0)
	const burst = 3
	b, port := openProbeBind(t, udpguard.Limits{PerSource: 0.001, PerSourceBurst: burst, Total: 1000, TotalBurst: 1000},
		func() time.Time { return frozen })
	assert.Equal(t, burst, probeAnswers(t, probeClient(t, "127.0.0.1", port), 20))
	assert.Equal(t, 2, probeAnswers(t, probeClient(t, "127.0.0.2", port), 2), "another source is answered")
	assert.EqualValues(t, 20-burst, b.probesLimited.Load())
	assert.EqualValues(t, burst+2, b.probesAnswered.Load())
}

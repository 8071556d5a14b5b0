package netdiag_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/netdiagtest"
	"github.com/tetherwfh/tether/netdiag/report"
)

// slowLink paces the bytes of every connection over it to a shared rate,
// as a line's bottleneck does.
type slowLink struct {
	bytesPerSec float64
	mu          sync.Mutex
	next        time.Time
}

func (l *slowLink) wait(n int) {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	l.next = l.next.Add(time.Duration(float64(n) / l.bytesPerSec * float64(time.Second)))
	at := l.next
	l.mu.Unlock()
	time.Sleep(time.Until(at))
}

// bufferedConn accepts writes into a deep buffer at once and drains it
// over the link, as a userspace tunnel's TCP stack does: what the caller
// wrote is not what arrived, and the OS cannot tell it what was
// acknowledged.
type bufferedConn struct {
	net.Conn
	link   *slowLink
	born   time.Time
	mu     sync.Mutex
	cond   *sync.Cond
	queued []byte
	closed bool
}

// A userspace stack's send buffer grows as its window does (gVisor's
// auto-tuning), up to megabytes per connection.
const (
	firstBuffer = 64 << 10
	sendBuffer  = 4 << 20
)

// limit is the buffer's size now: doubling every second, as the
// window grows with acknowledgements on a slow line.
func (b *bufferedConn) limit() int {
	return min(sendBuffer, firstBuffer<<min(int(time.Since(b.born)/time.Second), 6))
}

func newBufferedConn(c net.Conn, link *slowLink) *bufferedConn {
	b := &bufferedConn{Conn: c, link: link, born: time.Now()}
	b.cond = sync.NewCond(&b.mu)
	go func() {
		for {
			b.mu.Lock()
			for len(b.queued) == 0 && !b.closed {
				b.cond.Wait()
			}
			if b.closed {
				b.mu.Unlock()
				return
			}
			chunk := append([]byte(nil), b.queued[:min(len(b.queued), 16<<10)]...)
			b.queued = b.queued[len(chunk):]
			b.cond.Broadcast()
			b.mu.Unlock()
			b.link.wait(len(chunk))
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	return b
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.queued)+len(p) > b.limit() && !b.closed {
		b.mu.Unlock()
		time.Sleep(5 * time.Millisecond) // the buffer grows with time, not only as it drains
		b.mu.Lock()
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	b.queued = append(b.queued, p...)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *bufferedConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}

// TestUploadThroughACallersDial: through a dialer whose connections
// buffer more and more writes (a userspace tunnel's), the upload is what
// the server received, not what was written into the buffers. Counting
// the writes read 4.0 Mbit/s here on a 2 Mbit/s link, and 24 Mbit/s on a
// 1 Mbit/s line through the userspace tunnel in the lab.
func TestUploadThroughACallersDial(t *testing.T) {
	srv := netdiagtest.New(t, netdiagtest.Options{})
	const mbps = 2.0 // its buffers would take 16 s to fill: longer than the test
	link := &slowLink{bytesPerSec: mbps * 1e6 / 8}
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newBufferedConn(c, link), nil
	}
	c, err := netdiag.New(netdiag.Config{Server: srv.URL, STAMPPort: srv.STAMP.Port(), Dial: dial,
		Ping: noICMP, Router: netip.MustParseAddr("127.0.0.1"), DNS: netdiag.DNSConfig{Off: true}})
	require.NoError(t, err)
	rep := c.Run(context.Background(), report.ModeFull)
	require.NotNil(t, rep.Throughput, "%+v", rep.Errors)
	t.Logf("upload through a buffering %.0f Mbit/s link: %.1f Mbit/s (download, unshaped: %.0f Mbit/s)", mbps, rep.Throughput.UploadMbps, rep.Throughput.DownloadMbps)
	assert.InDelta(t, mbps, rep.Throughput.UploadMbps, mbps*0.15, "the upload is what arrived")
	require.NotNil(t, rep.Throughput.Upload)
	assert.Equal(t, "receiver", rep.Throughput.Upload.Counting, "the server said what arrived")
}

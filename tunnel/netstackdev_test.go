package tunnel

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// TestNetstackDeviceClosesUnderLoad closes the device while goroutines
// send through its stack as fast as they can and a reader drains it, as
// wireguard-go's does. Upstream's device sends on a channel its Close
// closes: this test, on it, reports a race or panics with a send on a
// closed channel. The wrapper must close cleanly, carry the packets
// before, and end Read with an error after.
func TestNetstackDeviceClosesUnderLoad(t *testing.T) {
	for range 20 {
		local := netip.MustParseAddr("10.98.0.1")
		raw, tnet, err := netstack.CreateNetTUN([]netip.Addr{local}, nil, 1420)
		require.NoError(t, err)
		dev, err := safeNetstack(raw, tnet)
		require.NoError(t, err)

		readErr := make(chan error, 1)
		var packets atomic.Int64
		go func() {
			bufs := make([][]byte, dev.BatchSize())
			for i := range bufs {
				bufs[i] = make([]byte, 2048)
			}
			sizes := make([]int, len(bufs))
			for {
				n, err := dev.Read(bufs, sizes, 0)
				packets.Add(int64(n))
				if err != nil {
					readErr <- err
					return
				}
			}
		}()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			c, err := tnet.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr("10.98.0.2"), 9))
			require.NoError(t, err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				msg := make([]byte, 512)
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = c.Write(msg) // fails once the stack closes
				}
			}()
		}
		require.Eventually(t, func() bool { return packets.Load() > 100 }, 10*time.Second, time.Millisecond, "packets flow before the close")
		require.NoError(t, dev.Close())
		select {
		case err := <-readErr:
			require.Error(t, err, "Read ends once the device closes")
		case <-time.After(10 * time.Second):
			t.Fatal("Read did not return after Close")
		}
		close(stop)
		wg.Wait()
	}
}

package measureserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// inNetns returns a function that runs fn on an OS thread inside a new
// network namespace whose loopback holds addrs, so sockets made there
// use them. It needs root (CAP_SYS_ADMIN); the test skips without.
func inNetns(t *testing.T, addrs ...string) func(fn func()) {
	t.Helper()
	jobs := make(chan func())
	ready := make(chan error)
	go func() {
		// The thread never leaves the namespace: ending the goroutine
		// while locked retires it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- err
			return
		}
		ready <- setUpLoopback(addrs)
		for fn := range jobs {
			fn()
		}
	}()
	if err := <-ready; err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("a network namespace needs root: %v", err)
		}
		require.NoError(t, err)
	}
	t.Cleanup(func() { close(jobs) })
	return func(fn func()) {
		done := make(chan struct{})
		jobs <- func() { defer close(done); fn() }
		<-done
	}
}

func setUpLoopback(addrs []string) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		addr.Flags = unix.IFA_F_NODAD // usable at once
		if err := netlink.AddrAdd(lo, addr); err != nil {
			return err
		}
	}
	return nil
}

// TestOneSlash64SharesALimit: limits were per exact address, so a host
// rotating through the addresses of its /64 escaped them.
func TestOneSlash64SharesALimit(t *testing.T) {
	do := inNetns(t, "2001:db8:77::1/64", "2001:db8:77::2/64", "2001:db8:77::3/64", "2001:db8:78::2/64")
	s, err := New(Config{Public: Limits{MaxConcurrentPerClient: 1}})
	require.NoError(t, err)
	var ln net.Listener
	do(func() { ln, err = net.Listen("tcp", "[2001:db8:77::1]:0") })
	require.NoError(t, err)
	srv := NewHTTPServer(s.Handler())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			do(func() { c, err = d.DialContext(ctx, network, addr) })
			return c, err
		}
		return &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 5 * time.Second}
	}
	first := get(t, from("2001:db8:77::2"), base+PathLarge)
	require.Equal(t, http.StatusOK, first.StatusCode)
	assert.Equal(t, http.StatusTooManyRequests, get(t, from("2001:db8:77::3"), base+PathLarge).StatusCode,
		"another address of the same /64 is the same client")
	assert.Equal(t, http.StatusOK, get(t, from("2001:db8:78::2"), base+PathLarge).StatusCode, "another /64 is another client")
}

package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Labs measure rates and delays, and two labs shaping traffic at once on a
// small machine steal each other's CPU: in CI, netlab's and netdiag's test
// binaries ran side by side and fiber's 500 Mbit/s measured 11% low. So
// every lab on the machine holds one exclusive flock while it exists.
// Labs within one process share the lock (a refcount), so a test that
// wants two labs at once still can.
var hostLock struct {
	mu   sync.Mutex
	refs int
	f    *os.File
}

// lockPath is where the machine-wide lab lock lives.
func lockPath() string {
	if st, err := os.Stat("/run/lock"); err == nil && st.IsDir() {
		return "/run/lock/tether-netlab.lock"
	}
	return filepath.Join(os.TempDir(), "tether-netlab.lock")
}

// acquireHost takes the machine-wide lab lock, waiting for other processes'
// labs to close, until ctx ends.
func acquireHost(ctx context.Context) error {
	hostLock.mu.Lock()
	defer hostLock.mu.Unlock()
	if hostLock.refs > 0 {
		hostLock.refs++
		return nil
	}
	f, err := os.OpenFile(lockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("netlab: opening the lab lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return fmt.Errorf("netlab: locking %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return fmt.Errorf("netlab: waiting for another process's lab to finish: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	hostLock.f = f
	hostLock.refs = 1
	return nil
}

// releaseHost drops one reference to the machine-wide lab lock.
func releaseHost() {
	hostLock.mu.Lock()
	defer hostLock.mu.Unlock()
	hostLock.refs--
	if hostLock.refs == 0 && hostLock.f != nil {
		_ = syscall.Flock(int(hostLock.f.Fd()), syscall.LOCK_UN)
		hostLock.f.Close()
		hostLock.f = nil
	}
}

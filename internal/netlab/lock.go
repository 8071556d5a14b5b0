package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Labs measure rates and delays, and two labs shaping traffic at once on a
// small machine steal each other's CPU: in CI, netlab's and netdiag's test
// binaries ran side by side and fiber's 500 Mbit/s measured 11% low. So
// every lab on the machine holds one exclusive lock while it exists.
// Labs within one process share the lock (a refcount), so a test that
// wants two labs at once still can.
//
// The lock is a queue, first come first served: a plain flock let one
// test binary take it again and again while another's test waited past
// its bound (CI, five minutes). Each waiter holds a ticket, a file in the
// queue directory named by its place and flocked by its process for as
// long as it waits or holds the lab; the live ticket with the lowest
// number holds the lab. A process that dies drops its flock, and the next
// waiter removes its ticket. Tickets are numbered under a short flock on
// the queue itself, so numbers follow arrival.
var hostLock struct {
	mu     sync.Mutex
	refs   int
	ticket *ticket
}

// ticket is a place in the lab queue: its file, flocked while we hold it.
type ticket struct {
	f    *os.File
	path string
}

// queueDir is where the machine-wide lab queue lives.
func queueDir() string {
	if st, err := os.Stat("/run/lock"); err == nil && st.IsDir() {
		return "/run/lock/tether-netlab"
	}
	return filepath.Join(os.TempDir(), "tether-netlab")
}

// acquireHost takes the machine-wide lab lock, waiting in line for other
// processes' labs to close, until ctx ends.
func acquireHost(ctx context.Context) error {
	hostLock.mu.Lock()
	defer hostLock.mu.Unlock()
	if hostLock.refs > 0 {
		hostLock.refs++
		return nil
	}
	dir := queueDir()
	ticket, err := takeTicket(dir)
	if err != nil {
		return err
	}
	for {
		first, err := firstInLine(dir, ticket)
		if err != nil {
			dropTicket(ticket)
			return err
		}
		if first {
			break
		}
		select {
		case <-ctx.Done():
			dropTicket(ticket)
			return fmt.Errorf("netlab: waiting for another process's lab to finish: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	hostLock.ticket = ticket
	hostLock.refs = 1
	return nil
}

// releaseHost drops one reference to the machine-wide lab lock.
func releaseHost() {
	hostLock.mu.Lock()
	defer hostLock.mu.Unlock()
	hostLock.refs--
	if hostLock.refs == 0 && hostLock.ticket != nil {
		dropTicket(hostLock.ticket)
		hostLock.ticket = nil
	}
}

// withQueue runs fn holding the queue's own flock.
func withQueue(dir string, fn func() error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("netlab: the lab queue: %w", err)
	}
	q, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("netlab: the lab queue: %w", err)
	}
	defer q.Close()
	if err := flockRetry(q, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("netlab: locking the lab queue %s: %w", dir, err)
	}
	defer syscall.Flock(int(q.Fd()), syscall.LOCK_UN)
	return fn()
}

func flockRetry(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// tickets lists the queue's ticket numbers, lowest first.
func tickets(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("netlab: reading the lab queue: %w", err)
	}
	var out []int64
	for _, e := range entries {
		if n, err := strconv.ParseInt(strings.TrimSuffix(e.Name(), ".ticket"), 10, 64); err == nil && strings.HasSuffix(e.Name(), ".ticket") {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func ticketPath(dir string, n int64) string {
	return filepath.Join(dir, strconv.FormatInt(n, 10)+".ticket")
}

// takeTicket joins the end of the line: a file flocked before it is
// renamed into the queue, so no one ever sees an unlocked live ticket.
func takeTicket(dir string) (*ticket, error) {
	var t *ticket
	err := withQueue(dir, func() error {
		ts, err := tickets(dir)
		if err != nil {
			return err
		}
		// A process that died between creating its file and renaming it
		// left a file no one will number.
		if olds, _ := filepath.Glob(filepath.Join(dir, "new-*")); len(olds) > 0 {
			for _, old := range olds {
				if !ticketLive(old) {
					os.Remove(old)
				}
			}
		}
		next := int64(1)
		if len(ts) > 0 {
			next = ts[len(ts)-1] + 1
		}
		tmp, err := os.CreateTemp(dir, "new-*")
		if err != nil {
			return fmt.Errorf("netlab: joining the lab queue: %w", err)
		}
		if err := flockRetry(tmp, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return fmt.Errorf("netlab: locking a lab ticket: %w", err)
		}
		path := ticketPath(dir, next)
		if err := os.Rename(tmp.Name(), path); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return fmt.Errorf("netlab: joining the lab queue: %w", err)
		}
		t = &ticket{f: tmp, path: path}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// firstInLine reports whether the lowest live ticket is ours, removing the
// tickets of processes that died in line before it.
func firstInLine(dir string, mine *ticket) (bool, error) {
	first := false
	err := withQueue(dir, func() error {
		ts, err := tickets(dir)
		if err != nil {
			return err
		}
		me, err := mine.f.Stat()
		if err != nil {
			return fmt.Errorf("netlab: our lab ticket: %w", err)
		}
		for _, n := range ts {
			path := ticketPath(dir, n)
			st, err := os.Stat(path)
			if err != nil {
				continue
			}
			if os.SameFile(st, me) {
				first = true
				return nil
			}
			if !ticketLive(path) {
				os.Remove(path)
				continue
			}
			return nil // someone alive is ahead of us
		}
		return errors.New("netlab: our lab ticket left the queue")
	})
	return first, err
}

// ticketLive reports whether a process still holds the ticket's flock.
func ticketLive(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = flockRetry(f, syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return true
}

// dropTicket leaves the line (or gives up the lab).
func dropTicket(t *ticket) {
	_ = withQueue(filepath.Dir(t.path), func() error {
		os.Remove(t.path)
		return nil
	})
	t.f.Close()
}

package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// Namespace is one host of the lab: a named network namespace created by
// `ip netns add`. Its methods are safe for concurrent use.
type Namespace struct {
	// Name is the iproute2 name, unique to this lab (see Lab for the scheme).
	Name string
	// Role is the topology role: "home", "isp", "gateway", "internet", "corp".
	Role string

	lab *Lab
}

// Do runs fn on an OS thread that has entered the namespace, and returns its
// error. Sockets that fn creates belong to the namespace for their whole
// life, so the usual pattern is to create listeners or connections inside Do
// and use them anywhere. Goroutines that fn starts run in the host namespace.
// A panic in fn is re-raised in the caller.
func (n *Namespace) Do(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		// The thread is never unlocked: once it has switched namespace,
		// returning from this goroutine makes the runtime discard it rather
		// than reuse it for unrelated goroutines.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join(netnsDir, n.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netlab: open namespace %s: %w", n.Name, err)}
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netlab: enter namespace %s: %w", n.Name, err)}
			return
		}
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		done <- result{err: fn()}
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// Listen is net.Listen inside the namespace.
func (n *Namespace) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket inside the namespace.
func (n *Namespace) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() (err error) {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// DialContext dials from inside the namespace. Its signature matches
// http.Transport.DialContext. Addresses must be IP literals: name resolution
// would run on another thread, outside the namespace.
func (n *Namespace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Command returns a command that runs inside the namespace through
// `ip netns exec`, which also bind-mounts the namespace's resolv.conf.
func (n *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output;
// the error includes that output, so callers can show it as is.
func (n *Namespace) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := n.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netlab: %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Start starts a long-running command inside the namespace. The lab kills it
// on Close if it is still running; its output goes to the lab's logger.
func (n *Namespace) Start(name string, args ...string) (*exec.Cmd, error) {
	return n.lab.startProcess(n, name, args...)
}

// ip runs `ip -n <ns> args...`.
func (n *Namespace) ip(ctx context.Context, args ...string) error {
	return run(ctx, "ip", append([]string{"-n", n.Name}, args...)...)
}

// nft loads an nftables ruleset into the namespace.
func (n *Namespace) nft(ctx context.Context, ruleset string) error {
	cmd := n.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netlab: %s: nft: %w: %s\nruleset:\n%s", n.Name, err, bytes.TrimSpace(out), ruleset)
	}
	return nil
}

// sysctl writes a value under /proc/sys inside the namespace.
func (n *Namespace) sysctl(ctx context.Context, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.Do(func() error {
		// /proc/sys/net follows the network namespace of the opening thread.
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("netlab: %s: sysctl %s=%s: %w", n.Name, key, value, err)
		}
		return nil
	})
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// errSkip marks an environment that cannot host a lab at all.
var errSkip = errors.New("netlab: environment cannot run the lab")

package client

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// socketProbeTimeout bounds the connect that tells a live daemon's socket
// from a stale one. A daemon on the same host accepts in microseconds;
// a second is for one that is busy starting up.
const socketProbeTimeout = time.Second

// localSocket is the local API's listener, with the identity of the file
// it was bound to, so that at exit the daemon removes its own socket and
// nothing that has taken its place.
type localSocket struct {
	*net.UnixListener
	path string
	id   os.FileInfo
}

// listenSocket listens on a unix socket at path, created with socketMode
// from the start. It refuses anything at path that is not a socket (a
// file, a directory, a symlink: never deleted, never followed) and a
// socket that a live daemon still serves; a stale socket, left by a
// daemon that died, is replaced.
//
// The socket is bound in a private directory (0700) beside path, so no one
// can connect before it has its mode, and then renamed over path, which
// replaces a stale socket atomically and follows no symlink.
//
// gid, unless -1, is the socket's group (for socket_group).
func listenSocket(path string, gid int) (*localSocket, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tetherd: socket directory: %w", err)
	}
	if err := checkSocketDir(dir); err != nil {
		return nil, err
	}
	if err := checkSocketPath(path); err != nil {
		return nil, err
	}
	// A short name: sun_path holds ~108 bytes, and this path is one
	// longer than the final one at most.
	priv, err := os.MkdirTemp(dir, ".t")
	if err != nil {
		return nil, fmt.Errorf("tetherd: local API: %w", err)
	}
	defer os.Remove(priv)
	tmp := filepath.Join(priv, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("tetherd: local API: %w", err)
	}
	// The listener's name is tmp, which will not exist: the daemon removes
	// path itself, and only while it is still its own.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*localSocket, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("tetherd: local API: %w", err)
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(err)
	}
	id, err := os.Lstat(tmp)
	if err != nil {
		return fail(err)
	}
	// Once more, narrowing the window in which a second daemon starting
	// at the same moment could be replaced.
	if err := checkSocketPath(path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &localSocket{UnixListener: ln, path: path, id: id}, nil
}

// checkSocketPath returns nil if path is free for a new socket: nothing
// there, or a stale socket.
func checkSocketPath(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tetherd: socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("tetherd: %s is %s, not a socket; tetherd never replaces it: remove it or set another socket in the config", path, kindOf(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, socketProbeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("tetherd: another tetherd already serves %s; stop it first", path)
	}
	if !isStaleSocket(err) {
		return fmt.Errorf("tetherd: cannot tell whether %s is still in use: %w", path, err)
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symbolic link"
	case fs.ModeNamedPipe:
		return "a named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "a device"
	}
	return "a special file (" + m.Type().String() + ")"
}

// remove deletes the socket file if it is still the one listenSocket
// created.
func (s *localSocket) remove() error {
	fi, err := os.Lstat(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("tetherd: removing the socket: %w", err)
	}
	if !os.SameFile(fi, s.id) {
		return nil // someone else's now
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tetherd: removing the socket: %w", err)
	}
	return nil
}

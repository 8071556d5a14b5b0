//go:build unix

package client

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// checkSocketDir refuses a directory where someone else could replace the
// socket: one writable by others, or owned by a user other than root or
// the daemon's.
func checkSocketDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("tetherd: socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("tetherd: socket directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("tetherd: socket directory %s is writable by others (%v), so anyone could replace the socket; use a directory only root or tetherd's user can write, such as /run/tether", dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("tetherd: socket directory %s belongs to uid %d, who could replace the socket; use a directory of root or tetherd's user, such as /run/tether", dir, st.Uid)
	}
	return nil
}

// isStaleSocket reports whether err, from connecting to a socket file,
// means no one listens on it any more.
func isStaleSocket(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

//go:build !unix

package client

import (
	"errors"
	"syscall"
)

// checkSocketDir is a no-op where access is governed by ACLs, which
// tetherd does not inspect; the installer secures the directory.
func checkSocketDir(string) error { return nil }

// wsaeconnrefused is Windows' WSAECONNREFUSED: nobody listens.
const wsaeconnrefused = syscall.Errno(10061)

// isStaleSocket reports whether err, from connecting to a socket file,
// means no one listens on it any more.
func isStaleSocket(err error) bool {
	return errors.Is(err, wsaeconnrefused) || errors.Is(err, syscall.ECONNREFUSED)
}

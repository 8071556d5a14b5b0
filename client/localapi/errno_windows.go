//go:build windows

package localapi

import "syscall"

// WSAECONNREFUSED: Windows' AF_UNIX reports a socket file with no
// listener this way.
var errConnRefused error = syscall.Errno(10061)

//go:build !windows

package localapi

import "syscall"

var errConnRefused error = syscall.ECONNREFUSED

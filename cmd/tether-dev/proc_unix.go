//go:build !windows

package main

import (
	"os"
	"syscall"
)

// childAttr puts a component in its own process group, so a terminal's
// Ctrl-C reaches only us and we stop the components in order.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

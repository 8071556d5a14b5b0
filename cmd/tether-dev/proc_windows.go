//go:build windows

package main

import (
	"os"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

// terminate kills: Windows has no SIGTERM to deliver to a console child.
func terminate(p *os.Process) error { return p.Kill() }

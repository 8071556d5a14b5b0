//go:build unix

package gateway

import "syscall"

// connBudget is the total connection cap for one listener: a quarter of
// the descriptor limit (Go raises the soft limit to the hard one at
// start), within minConnBudget and maxConnBudget.
func connBudget() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return minConnBudget
	}
	return int(min(max(rl.Cur/4, minConnBudget), maxConnBudget))
}

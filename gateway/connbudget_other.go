//go:build !unix

package gateway

// connBudget is the total connection cap for one listener. Windows has
// no descriptor limit to derive it from; sockets are bounded by memory.
func connBudget() int { return 4096 }

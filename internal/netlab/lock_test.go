package netlab

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostLockIsFirstComeFirstServed: the lab lock is a queue, so a test
// binary that takes the lab again and again cannot starve another's test
// waiting in line; a waiter that dies leaves the line. Tickets in one
// process conflict as they do across processes (flock is per open file).
func TestHostLockIsFirstComeFirstServed(t *testing.T) {
	dir := t.TempDir()
	take := func() *ticket {
		t.Helper()
		tk, err := takeTicket(dir)
		require.NoError(t, err)
		return tk
	}
	first := func(tk *ticket) bool {
		t.Helper()
		ok, err := firstInLine(dir, tk)
		require.NoError(t, err)
		return ok
	}
	a := take()
	assert.True(t, first(a), "alone in line")
	b, c := take(), take()
	assert.False(t, first(b), "a holds the lab")
	assert.False(t, first(c))

	dropTicket(a)
	a2 := take() // a wants the lab again at once: it queues behind b and c
	assert.True(t, first(b), "b came before c and a's second ticket")
	assert.False(t, first(c))
	assert.False(t, first(a2))

	dropTicket(b)
	// c's process dies: its flock goes, its file stays.
	require.NoError(t, c.f.Close())
	assert.True(t, first(a2), "a dead waiter leaves the line")
	_, err := os.Stat(c.path)
	assert.True(t, os.IsNotExist(err), "the dead waiter's ticket is removed")
	dropTicket(a2)

	ts, err := tickets(dir)
	require.NoError(t, err)
	assert.Empty(t, ts)
}

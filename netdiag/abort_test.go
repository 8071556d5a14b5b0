package netdiag

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoadConnectionsAbort: a finished load resets its connections, so
// what they have not sent does not drain into the next phase; a graceful
// close would deliver all of it, then EOF.
func TestLoadConnectionsAbort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	srv := <-accepted
	defer srv.Close()
	// The peer reads nothing yet: its window and our send buffer fill.
	_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, _ := io.Copy(c, io.LimitReader(bytes.NewReader(make([]byte, 64<<20)), 64<<20))
	var s connSet
	s.add(c)
	s.abort()
	got, err := io.Copy(io.Discard, srv)
	t.Logf("wrote %d bytes before aborting; the peer read %d, then %v", n, got, err)
	require.Error(t, err, "a reset, not an orderly end of stream")
	assert.Less(t, got, n, "the unsent bytes were dropped")
}

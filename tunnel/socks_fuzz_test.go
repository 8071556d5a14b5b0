package tunnel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzSOCKS5 feeds arbitrary bytes to the SOCKS5 server as a client's
// greeting and request. It must never panic or hang, and it may only dial
// a well-formed host:port.
func FuzzSOCKS5(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 10, 99, 0, 1, 0, 80})
	f.Add([]byte{5, 2, 2, 0, 5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 1, 187})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 4, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53})
	f.Add([]byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 22}) // BIND
	f.Add([]byte{5, 1, 2})                                  // no acceptable method
	f.Add([]byte{4, 1, 0, 80, 127, 0, 0, 1, 0})             // SOCKS4
	f.Add([]byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80})            // empty name
	f.Fuzz(func(t *testing.T, in []byte) {
		var dialed []string
		p := newProxyServer(func(_ context.Context, _, addr string) (net.Conn, error) {
			dialed = append(dialed, addr)
			return nil, errors.New("the fuzzer has no network")
		}, slog.New(slog.DiscardHandler))
		defer func() { _ = p.close(context.Background()) }()
		client, server := net.Pipe()
		defer client.Close()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		go func() { _, _ = client.Write(in); client.Close() }()
		_ = p.socks5(server)
		server.Close()
		require.LessOrEqual(t, len(dialed), 1)
		for _, a := range dialed {
			_, port, err := net.SplitHostPort(a)
			require.NoError(t, err, "dialed %q", a)
			n, err := strconv.Atoi(port)
			require.NoError(t, err)
			require.True(t, n >= 0 && n <= 65535)
		}
	})
}

package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeCallsOwnTheirServers: the gateway serves one resolver on the
// host's sockets and on the tunnel's at once. One Serve stopping must not
// stop the other's servers, and two stopping together, however their
// start and stop interleave, must both return: a server shut down before
// it started would serve for ever and its Serve never return (a gateway
// that did not stop, seen in CI).
func TestServeCallsOwnTheirServers(t *testing.T) {
	up := startUpstream(t, answerA)
	r, err := New(context.Background(), Config{Upstreams: []UpstreamConfig{{Addr: up.addr}}}, Options{})
	require.NoError(t, err)

	serve := func(ctx context.Context) (addr string, done chan error) {
		pc, ln := listenPair(t)
		done = make(chan error, 1)
		go func() { done <- r.Serve(ctx, pc, ln) }()
		return pc.LocalAddr().String(), done
	}
	waitDone := func(name string, done chan error) {
		t.Helper()
		select {
		case err := <-done:
			assert.NoError(t, err, name)
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: Serve did not return within 15 s of its context ending", name)
		}
	}

	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	_, doneA := serve(ctxA)
	addrB, doneB := serve(ctxB)
	ask := func(proto string) error {
		q := new(dns.Msg)
		q.SetQuestion("www.example.", dns.TypeA)
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		var err error
		for range 20 { // B may still be starting
			if _, _, err = c.Exchange(q, addrB); err == nil {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return err
	}
	require.NoError(t, ask("udp"))
	stopA()
	waitDone("A", doneA)
	assert.NoError(t, ask("udp"), "B's UDP stopped with A")
	assert.NoError(t, ask("tcp"), "B's TCP stopped with A")
	stopB()
	waitDone("B", doneB)

	// Both stopping at once, at every point of their start.
	for i := range 40 {
		ctx, cancel := context.WithCancel(context.Background())
		_, d1 := serve(ctx)
		_, d2 := serve(ctx)
		time.Sleep(time.Duration(i%8) * 250 * time.Microsecond)
		cancel()
		waitDone("first", d1)
		waitDone("second", d2)
	}
}

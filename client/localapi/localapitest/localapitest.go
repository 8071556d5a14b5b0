// Package localapitest is a fake tetherd for tests: it serves the local
// API, through localapi.Handler as the daemon does, on a unix socket in
// the test's temporary directory, and answers what the test sets. Tests of
// the CLI and the tray use it in place of a daemon.
//
// Boundaries: it imports client/localapi and the standard library only,
// never the daemon (package client), so the tray's tests can use it.
package localapitest

import (
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
)

// Daemon is a fake tetherd. Create it with New; its methods are safe for
// concurrent use.
type Daemon struct {
	// Socket is the unix socket it serves on.
	Socket string

	stop func()

	mu     sync.Mutex
	status localapi.Status
	fail   *localapi.Error
}

// New starts a fake daemon whose status is StateStarting until the test
// calls SetStatus. The test's cleanup stops it.
func New(tb testing.TB) *Daemon {
	tb.Helper()
	d := &Daemon{status: localapi.Status{State: localapi.StateStarting, Version: "localapitest", Since: time.Now()}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+localapi.PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		st, fail := d.answer()
		if fail != nil {
			localapi.WriteError(w, fail)
			return
		}
		localapi.WriteJSON(w, st)
	})
	d.Socket, d.stop = serve(tb, localapi.Handler(mux))
	return d
}

// SetStatus sets the status the daemon answers, and ends a Fail.
func (d *Daemon) SetStatus(st localapi.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status, d.fail = st, nil
}

// Fail makes every call answer e until SetStatus.
func (d *Daemon) Fail(e *localapi.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cp := *e
	d.fail = &cp
}

func (d *Daemon) answer() (localapi.Status, *localapi.Error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status, d.fail
}

// Client returns a new local API client for the daemon.
func (d *Daemon) Client() *localapi.Client { return &localapi.Client{Socket: d.Socket} }

// Close stops the daemon and removes its socket, as a daemon that exits
// does: clients then get localapi.ErrNotRunning. It may be called more
// than once.
func (d *Daemon) Close() { d.stop() }

// Serve serves h on a unix socket in the test's temporary directory until
// the test ends, and returns the socket's path. It serves h as it is,
// without localapi.Handler, so a test can answer what no daemon would.
func Serve(tb testing.TB, h http.Handler) string {
	tb.Helper()
	sock, _ := serve(tb, h)
	return sock
}

// serve serves h until the returned stop is called or the test ends.
func serve(tb testing.TB, h http.Handler) (string, func()) {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "tetherd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatalf("localapitest: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	stop := sync.OnceFunc(func() {
		srv.Close() // closes ln, which removes the socket
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("localapitest: serving %s: %v", sock, err)
		}
	})
	tb.Cleanup(stop)
	return sock, stop
}

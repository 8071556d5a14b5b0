// Package netdiagtest stands up, for tests, the far end netdiag measures
// against: Tether's measurement server (HTTP/1.1 and h2c, as the gateway
// serves it) answering the gateway's /healthz too, and a STAMP reflector.
// Each runs on its own sockets, by default on ephemeral loopback ports,
// until the test ends.
//
// Boundaries: netdiagtest imports netdiag/measureserver and netdiag/stamp
// only, never netdiag itself, so netdiag's own in-package tests use it
// too. It is for tests: nothing outside _test.go files imports it.
package netdiagtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"

	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/stamp"
)

// PathHealth is the gateway's liveness endpoint, which netdiag's service
// check asks (gwapi.PathHealth; this package imports nothing of the
// gateway). The server answers it 200, as a running gateway does.
const PathHealth = "/healthz"

// Options configure New. The zero value serves every client from the
// trusted pool on 127.0.0.1.
type Options struct {
	// Measure configures the measurement server. Nil means TrustAll: the
	// trusted pool for every client, as the gateway serves enrolled
	// devices inside the tunnel, since the public pool's guard would cap
	// what a test can measure.
	Measure *measureserver.Config
	// Listen creates the measurement server's listener; nil means TCP on
	// 127.0.0.1 with an ephemeral port. A lab passes its gateway
	// namespace's.
	Listen func() (net.Listener, error)
	// ListenPacket creates the reflector's socket; nil means UDP on
	// 127.0.0.1 with an ephemeral port.
	ListenPacket func() (net.PacketConn, error)
}

// Server is a running measurement server and STAMP reflector.
type Server struct {
	// URL is the measurement server's base URL, http://ADDR:PORT: what
	// netdiag.Config.Server takes.
	URL string
	// Addr is the measurement server's TCP address.
	Addr netip.AddrPort
	// STAMP is the reflector's UDP address; its port is what
	// netdiag.Config.STAMPPort takes.
	STAMP netip.AddrPort
	// Measure and Reflector are the servers, for their counters.
	Measure   *measureserver.Server
	Reflector *stamp.Reflector
}

// New starts a measurement server and a STAMP reflector and stops both
// when tb's test ends. It fails tb if either cannot start.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	cfg := measureserver.Config{TrustAll: true}
	if opts.Measure != nil {
		cfg = *opts.Measure
	}
	ms, err := measureserver.New(cfg)
	if err != nil {
		tb.Fatalf("netdiagtest: %v", err)
	}
	listen := opts.Listen
	if listen == nil {
		listen = func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	}
	ln, err := listen()
	if err != nil {
		tb.Fatalf("netdiagtest: measurement server: %v", err)
	}
	mux := http.NewServeMux()
	mh := ms.Handler()
	for _, p := range measureserver.Paths {
		mux.Handle(p, mh)
	}
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	srv := measureserver.NewHTTPServer(mux)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("netdiagtest: measurement server: %v", err)
		}
	}()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	s := &Server{URL: fmt.Sprintf("http://%s", addr), Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), Measure: ms}

	var pc net.PacketConn
	if opts.ListenPacket != nil {
		pc, err = opts.ListenPacket()
		if err != nil {
			tb.Fatalf("netdiagtest: STAMP reflector: %v", err)
		}
	}
	s.Reflector, s.STAMP = ServeSTAMP(tb, pc)
	return s
}

// ServeSTAMP runs a STAMP reflector with default limits on pc, or, when
// pc is nil, on a new UDP socket on 127.0.0.1 with an ephemeral port. It
// returns the reflector and the address it answers on; pc is closed, and
// the reflector stopped, when tb's test ends. pc may be a wrapper that
// impairs the path (drops or limits packets), as long as its LocalAddr is
// a *net.UDPAddr.
func ServeSTAMP(tb testing.TB, pc net.PacketConn) (*stamp.Reflector, netip.AddrPort) {
	tb.Helper()
	if pc == nil {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			tb.Fatalf("netdiagtest: STAMP reflector: %v", err)
		}
	}
	r := &stamp.Reflector{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = r.Serve(pc) // returns nil once pc is closed
	}()
	tb.Cleanup(func() {
		_ = pc.Close()
		wg.Wait()
	})
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	if !ok {
		tb.Fatalf("netdiagtest: STAMP reflector: %v is no UDP address", pc.LocalAddr())
	}
	ap := ua.AddrPort()
	return r, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

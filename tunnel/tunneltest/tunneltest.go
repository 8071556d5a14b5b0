// Package tunneltest stands up real WireGuard peers for tests: a
// "gateway" (a userspace engine listening on loopback, with one client
// configured) and a client connected to it, keys generated, both on
// gVisor's netstack, so no root is needed. Servers run inside the
// gateway's netstack (Gateway.Net), where only the tunnel reaches them.
//
// Boundaries: tunneltest imports tunnel and nothing else of the product.
// It is for tests: nothing outside _test.go files imports it.
package tunneltest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/tetherwfh/tether/tunnel"
)

// The pair's tunnel addresses.
var (
	// GatewayAddr is the gateway's address inside the tunnel; the client
	// pings it, and uses it as its DNS server.
	GatewayAddr = netip.MustParseAddr("10.99.0.1")
	// ClientAddr is the client's address inside the tunnel.
	ClientAddr = netip.MustParseAddr("10.99.0.2")
	// Network is the tunnel's network, which the client routes to the
	// gateway.
	Network = netip.MustParsePrefix("10.99.0.0/24")
)

// Gateway is a userspace engine listening on 127.0.0.1, up, with one
// peer: the client whose key is ClientKey.
type Gateway struct {
	*tunnel.Userspace
	// ClientKey is the client's private key; the gateway knows its public
	// half. PresharedKey is the pair's.
	ClientKey    tunnel.PrivateKey
	PresharedKey tunnel.PresharedKey
	// PublicKey is the gateway's.
	PublicKey tunnel.PublicKey
	// Endpoint is where it listens for WireGuard.
	Endpoint netip.AddrPort
}

// NewGateway starts a gateway with opts (its Config is set here: an
// address in Network, the client as its only peer) and takes it down when
// tb's test ends. It fails tb if the engine cannot start.
func NewGateway(tb testing.TB, opts tunnel.UserspaceOptions) *Gateway {
	tb.Helper()
	gk := must(tb, tunnel.GeneratePrivateKey)
	ck := must(tb, tunnel.GeneratePrivateKey)
	psk := must(tb, tunnel.GeneratePresharedKey)
	opts.Config = &tunnel.Config{
		Interface: tunnel.Interface{PrivateKey: gk, Addresses: []netip.Prefix{netip.PrefixFrom(GatewayAddr, Network.Bits())}},
		Peers:     []tunnel.Peer{{PublicKey: ck.Public(), PresharedKey: psk, AllowedIPs: []netip.Prefix{netip.PrefixFrom(ClientAddr, 32)}}},
	}
	u, err := tunnel.NewUserspace(opts)
	if err != nil {
		tb.Fatalf("tunneltest: gateway: %v", err)
	}
	up(tb, u, "gateway")
	port := u.ListenPort()
	if port == 0 {
		tb.Fatal("tunneltest: the gateway listens on no port")
	}
	return &Gateway{Userspace: u, ClientKey: ck, PresharedKey: psk, PublicKey: gk.Public(),
		Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}
}

// ClientConfig is the configuration of the gateway's client: ClientAddr,
// the gateway as its DNS server and only peer at Endpoint, Network and
// routes sent to it. Written out (Config.Marshal), it is a wg-quick file
// for `tether tunnel up`.
func (g *Gateway) ClientConfig(routes ...netip.Prefix) *tunnel.Config {
	return &tunnel.Config{
		Interface: tunnel.Interface{PrivateKey: g.ClientKey, Addresses: []netip.Prefix{netip.PrefixFrom(ClientAddr, 32)}, DNS: []netip.Addr{GatewayAddr}},
		Peers: []tunnel.Peer{{PublicKey: g.PublicKey, PresharedKey: g.PresharedKey, AllowedIPs: append([]netip.Prefix{Network}, routes...),
			Endpoint: g.Endpoint.String(), PersistentKeepalive: 25}},
	}
}

// PairOptions configure NewPair. The zero value is a split tunnel with
// neither proxies nor forwarding.
type PairOptions struct {
	// Mode is the client's plan; empty means tunnel.ModeSplit.
	Mode tunnel.Mode
	// Gateway and Client are each engine's options; their Config (and
	// the client's Plan and Probe) are set here.
	Gateway, Client tunnel.UserspaceOptions
	// Routes are more prefixes the client sends to the gateway, beside
	// Network: subnets behind it (see tunnel.Forward).
	Routes []netip.Prefix
}

// Pair is a gateway and a client connected to it, both up.
type Pair struct {
	Gateway *Gateway
	// Client routes Network and the extra routes to the gateway, and
	// probes GatewayAddr for its health.
	Client *tunnel.Userspace
}

// NewPair starts a gateway and a client with opts and takes both down
// when tb's test ends. The client is up, which for a userspace engine
// means configured: the handshake happens with its first packet. It
// fails tb if either cannot start.
func NewPair(tb testing.TB, opts PairOptions) *Pair {
	tb.Helper()
	gw := NewGateway(tb, opts.Gateway)
	mode := opts.Mode
	if mode == "" {
		mode = tunnel.ModeSplit
	}
	cfg := gw.ClientConfig(opts.Routes...)
	plan, err := tunnel.Compute(tunnel.Policy{Mode: mode, Endpoints: []netip.Addr{gw.Endpoint.Addr()},
		CompanyPrefixes: append([]netip.Prefix{Network}, opts.Routes...), CompanyDNS: cfg.Interface.DNS})
	if err != nil {
		tb.Fatalf("tunneltest: plan: %v", err)
	}
	co := opts.Client
	co.Config, co.Plan, co.Probe = cfg, plan, GatewayAddr
	c, err := tunnel.NewUserspace(co)
	if err != nil {
		tb.Fatalf("tunneltest: client: %v", err)
	}
	up(tb, c, "client")
	return &Pair{Gateway: gw, Client: c}
}

// ServeEndless serves an endless download on ln until the test ends:
// every connection gets bytes until a write fails (the client left, or
// the tunnel went down). ln is closed, and every connection ended, when
// tb's test ends. ln may be a host listener or one in a netstack
// (Gateway.Net().ListenTCPAddrPort).
func ServeEndless(tb testing.TB, ln net.Listener) {
	tb.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	done := false
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if done {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				buf := make([]byte, 32<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		done = true
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func up(tb testing.TB, u *tunnel.Userspace, who string) {
	tb.Helper()
	if err := u.Up(context.Background()); err != nil {
		tb.Fatalf("tunneltest: %s: %v", who, err)
	}
	tb.Cleanup(func() { _ = u.Down(context.Background()) })
}

func must[T any](tb testing.TB, f func() (T, error)) T {
	tb.Helper()
	v, err := f()
	if err != nil {
		tb.Fatal(fmt.Errorf("tunneltest: %w", err))
	}
	return v
}

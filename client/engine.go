package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/tunnel"
)

// Engine kinds (Status.Engine, Settings.Engine).
const (
	EngineAuto      = "auto"
	EngineTUN       = "tun"
	EngineUserspace = "userspace"
)

// engine is a running tunnel as the daemon drives it. Its methods are
// safe for concurrent use.
type engine interface {
	tunnel.Tunnel
	// Kind is tun or userspace.
	Kind() string
	// Dial and Ping reach the network as the tunnel routes it, for a
	// diagnosis through the tunnel; Ping may be nil (the host's ICMP
	// then takes the tunnel's routes).
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	Ping() func(ctx context.Context, dst netip.Addr) (time.Duration, error)
	// Proxies are the userspace engine's loopback proxies; nil for TUN.
	Proxies() *localapi.Proxies
	// Block installs only the kill switch, for an engine that is not up
	// (TUN; an error for userspace, which has none). Hold is Down that
	// leaves the kill switch in place. Either way the rules stay until a
	// fail-closed Up replaces them or tunnel.RemoveKillSwitch drops them.
	Block(ctx context.Context) error
	Hold(ctx context.Context) error
}

// engineSpec is what an engine is built from.
type engineSpec struct {
	Kind       string // tun or userspace, chosen
	Config     *tunnel.Config
	Plan       *tunnel.Plan
	Probe      netip.Addr // the gateway's tunnel address
	FailClosed bool       // the kill switch (TUN only)
	StateDir   string     // for the DNS manager's saved resolv.conf
	Logger     *slog.Logger
}

// chooseEngine resolves Settings.Engine: auto is TUN where the daemon may
// create a device (Linux, root, /dev/net/tun), userspace otherwise; tun
// where TUN is impossible is an error that says why.
func chooseEngine(setting string) (string, error) {
	tunOK, why := tunAvailable()
	switch setting {
	case "", EngineAuto:
		if tunOK {
			return EngineTUN, nil
		}
		return EngineUserspace, nil
	case EngineUserspace:
		return EngineUserspace, nil
	case EngineTUN:
		if !tunOK {
			return "", fmt.Errorf("the TUN engine is not available here (%s); use engine: userspace", why)
		}
		return EngineTUN, nil
	}
	return "", fmt.Errorf("engine %q: want auto, tun or userspace", setting)
}

func tunAvailable() (bool, string) {
	if runtime.GOOS != "linux" {
		return false, "the TUN engine is Linux-only so far"
	}
	if os.Geteuid() != 0 {
		return false, "creating a TUN device needs root"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return false, "no /dev/net/tun"
	}
	return true, ""
}

// newEngine builds (but does not start) the engine spec names.
func newEngine(spec engineSpec) (engine, error) {
	opts := tunnel.Options{Config: spec.Config, Plan: spec.Plan, Probe: spec.Probe, Logger: spec.Logger}
	switch spec.Kind {
	case EngineTUN:
		t, err := tunnel.NewTUN(tunnel.TUNOptions{Options: opts, FailClosed: spec.FailClosed,
			DNS: tunnel.DetectDNS("/etc/resolv.conf", spec.StateDir)})
		if err != nil {
			return nil, err
		}
		return tunEngine{t}, nil
	case EngineUserspace:
		u, err := tunnel.NewUserspace(tunnel.UserspaceOptions{Options: opts,
			SOCKSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DNSListen: "127.0.0.1:0"})
		if err != nil {
			return nil, err
		}
		return userspaceEngine{u}, nil
	}
	return nil, errors.New("no engine chosen")
}

type tunEngine struct{ *tunnel.TUN }

func (tunEngine) Kind() string { return EngineTUN }
func (tunEngine) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
func (tunEngine) Ping() func(ctx context.Context, dst netip.Addr) (time.Duration, error) { return nil }
func (tunEngine) Proxies() *localapi.Proxies                                             { return nil }

type userspaceEngine struct{ *tunnel.Userspace }

func (userspaceEngine) Kind() string { return EngineUserspace }
func (u userspaceEngine) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return u.DialContext(ctx, network, addr)
}
func (u userspaceEngine) Ping() func(ctx context.Context, dst netip.Addr) (time.Duration, error) {
	return u.Userspace.Ping
}
func (userspaceEngine) Block(context.Context) error {
	return errors.New("the userspace engine has no kill switch")
}
func (u userspaceEngine) Hold(ctx context.Context) error { return u.Down(ctx) }
func (u userspaceEngine) Proxies() *localapi.Proxies {
	p := &localapi.Proxies{}
	if a := u.SOCKSAddr(); a != nil {
		p.SOCKS5 = a.String()
	}
	if a := u.HTTPAddr(); a != nil {
		p.HTTP = a.String()
	}
	if a := u.DNSAddr(); a != nil {
		p.DNS = a.String()
	}
	return p
}

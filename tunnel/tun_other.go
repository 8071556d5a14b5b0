//go:build !linux

package tunnel

import (
	"context"
	"errors"
	"net/netip"
)

// TUNOptions configure the TUN engine (Linux only so far; macOS and
// Windows come behind their own build tags).
type TUNOptions struct {
	Options
	Name       string
	FwMark     uint32
	Table      int
	FailClosed bool
	AllowLAN   []netip.Prefix
	DNS        DNSManager
}

// TUN is not available on this OS yet: use the userspace engine.
type TUN struct{}

var errTUNUnsupported = errors.New("tunnel: the TUN engine is Linux-only so far; use the userspace engine")

func NewTUN(TUNOptions) (*TUN, error)    { return nil, errTUNUnsupported }
func (*TUN) Up(context.Context) error    { return errTUNUnsupported }
func (*TUN) Down(context.Context) error  { return nil }
func (*TUN) Block(context.Context) error { return errTUNUnsupported }
func (*TUN) Hold(context.Context) error  { return nil }
func (*TUN) Status() Status {
	return Status{Engine: "tun", Health: HealthDown, Reason: errTUNUnsupported.Error()}
}

func (*TUN) ListenPort() uint16                  { return 0 }
func (*TUN) SetPeer(context.Context, Peer) error { return errTUNUnsupported }
func (*TUN) RemovePeer(PublicKey) error          { return errTUNUnsupported }
func (*TUN) PeerStats() ([]PeerStats, error)     { return nil, errTUNUnsupported }

package tunnel

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"unsafe"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
)

// netstackChanged prefixes the errors of code that reads wireguard-go's
// netstack internals: go.mod pins the version, and a rename fails with
// this, when the tunnel comes up, not later.
const netstackChanged = "tunnel: wireguard-go's netstack changed"

// netstackField reads tnet's unexported field name, of type T. wireguard-go
// offers no accessors for its gVisor stack or link endpoint.
func netstackField[T any](tnet *netstack.Net, name string) (T, error) {
	return unexportedField[T](tnet, name)
}

// unexportedField reads the field called name of the struct ptr points
// to, which must have type T.
func unexportedField[T any](ptr any, name string) (T, error) {
	var zero T
	f := reflect.ValueOf(ptr).Elem().FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeFor[T]() {
		return zero, fmt.Errorf("%s: no %s field of type %s", netstackChanged, name, reflect.TypeFor[T]())
	}
	return *(*T)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// netstackDevice is wireguard-go's netstack TUN with a safe way out.
//
// Upstream, gVisor's outbound packets reach wireguard-go through an
// unbuffered channel that the stack's own goroutines send on (WriteNotify)
// and Close closes, with nothing between them: a TCP segment sent while
// the device closes races the close (the race detector caught it when a
// gateway shut down mid speed test), and a sender blocked at that moment
// panics with a send on a closed channel. See WireGuard/wireguard-go#85
// and #134, still open; Mullvad and Coder patch their forks.
//
// This wrapper unhooks that channel: outbound packets stay in the link
// endpoint's own queue (1024 packets, dropped beyond that as a NIC's
// transmit queue drops them) and Read takes them with a context that
// Close cancels first. gVisor's queue locks its writes against its close,
// so nothing sends on a closed channel. Write, Events, MTU and the rest
// are the netstack's own.
type netstackDevice struct {
	tun.Device
	ep     *channel.Endpoint
	ctx    context.Context
	cancel context.CancelFunc
}

// safeNetstack wraps dev, the device half of netstack.CreateNetTUN, whose
// other half is tnet. On error dev is left as it was, for the caller to
// close.
func safeNetstack(dev tun.Device, tnet *netstack.Net) (tun.Device, error) {
	ep, err := netstackField[*channel.Endpoint](tnet, "ep")
	if err != nil {
		return nil, err
	}
	h, err := netstackField[*channel.NotificationHandle](tnet, "notifyHandle")
	if err != nil {
		return nil, err
	}
	if ep == nil || h == nil {
		return nil, fmt.Errorf("%s: no link endpoint or notification handle", netstackChanged)
	}
	// From here on WriteNotify is never called, so the netstack's channel
	// is never sent on; Close still closes it, harmlessly.
	ep.RemoveNotify(h)
	ctx, cancel := context.WithCancel(context.Background())
	return &netstackDevice{Device: dev, ep: ep, ctx: ctx, cancel: cancel}, nil
}

// Read blocks for the first outbound packet, then takes whatever else is
// queued, up to len(bufs).
func (d *netstackDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		pkt := d.ep.Read()
		if pkt == nil && n == 0 {
			pkt = d.ep.ReadContext(d.ctx)
		}
		if pkt == nil {
			if n == 0 {
				return 0, os.ErrClosed
			}
			break
		}
		view := pkt.ToView()
		pkt.DecRef()
		m, err := view.Read(bufs[n][offset:])
		view.Release()
		if err != nil {
			return n, fmt.Errorf("tunnel: reading an outbound packet: %w", err)
		}
		sizes[n] = m
		n++
	}
	return n, nil
}

// Close stops Read first, then closes the netstack.
func (d *netstackDevice) Close() error {
	d.cancel()
	return d.Device.Close()
}

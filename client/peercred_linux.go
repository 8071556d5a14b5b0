//go:build linux

package client

import (
	"context"
	"net"

	"golang.org/x/sys/unix"
)

// peerKey keys the caller's credentials in a request's context.
type peerKey struct{}

// peer is who is on the other end of a local API connection, as the
// kernel says (SO_PEERCRED), so no caller can claim to be someone else.
type peer struct {
	known    bool
	uid, gid uint32
}

// peerContext is the local API server's ConnContext: it reads the
// caller's credentials once per connection.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	p := peer{}
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					p = peer{known: true, uid: cred.Uid, gid: cred.Gid}
				}
			})
		}
	}
	return context.WithValue(ctx, peerKey{}, p)
}

func peerOf(ctx context.Context) (peer, bool) {
	p, ok := ctx.Value(peerKey{}).(peer)
	return p, ok && p.known
}

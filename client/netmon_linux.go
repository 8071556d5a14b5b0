//go:build linux

package client

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkWatcher follows address and route events (RTNLGRP_IPV4_IFADDR,
// RTNLGRP_IPV4_ROUTE and their IPv6 twins) and reads the default route
// of the main table; the tunnel's own routes live in a table of their
// own and do not count as a change.
type netlinkWatcher struct{ log *slog.Logger }

// netlinkResubscribe is how long to wait before subscribing again when
// the kernel closed a subscription (a buffer overrun).
const netlinkResubscribe = time.Second

func newNetWatcher(log *slog.Logger) netWatcher { return netlinkWatcher{log: log} }

func (w netlinkWatcher) Watch(ctx context.Context) <-chan network {
	pokes := make(chan struct{}, 1)
	poke := func() {
		select {
		case pokes <- struct{}{}:
		default:
		}
	}
	go func() {
		for ctx.Err() == nil {
			addrs := make(chan netlink.AddrUpdate, 16)
			routes := make(chan netlink.RouteUpdate, 16)
			done := make(chan struct{})
			errf := func(err error) { w.log.Debug("netlink subscription", "err", err) }
			err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{ErrorCallback: errf})
			if err == nil {
				err = netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{ErrorCallback: errf})
			}
			if err != nil {
				w.log.Warn("cannot follow network changes; checking the default route every few seconds instead", "err", err)
			}
			w.follow(ctx, addrs, routes, err != nil, poke)
			close(done)
			select {
			case <-ctx.Done():
			case <-time.After(netlinkResubscribe):
			}
		}
	}()
	return debounce(ctx, pokes, networkDebounce, defaultRoute)
}

// follow pokes on every event until ctx ends or a subscription closes;
// poll pokes on a timer instead.
func (w netlinkWatcher) follow(ctx context.Context, addrs <-chan netlink.AddrUpdate, routes <-chan netlink.RouteUpdate, poll bool, poke func()) {
	var tick <-chan time.Time
	if poll {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			poke()
		case _, ok := <-addrs:
			if !ok {
				return
			}
			poke()
		case u, ok := <-routes:
			if !ok {
				return
			}
			if u.Table == unix.RT_TABLE_MAIN || u.Table == 0 {
				poke()
			}
		}
	}
}

// defaultRoute reads the main table's default route, IPv4 first.
func defaultRoute() network {
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			continue
		}
		var best *netlink.Route
		for i := range rs {
			r := &rs[i]
			if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && (best == nil || r.Priority < best.Priority) {
				best = r
			}
		}
		if best == nil {
			continue
		}
		n := network{}
		if l, err := netlink.LinkByIndex(best.LinkIndex); err == nil {
			n.Interface = l.Attrs().Name
		}
		if a, ok := netip.AddrFromSlice(best.Gw); ok {
			n.Router = a.Unmap()
		}
		if n.Interface != "" {
			return n
		}
	}
	return network{}
}

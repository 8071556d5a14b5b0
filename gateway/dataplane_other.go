//go:build !linux

package gateway

import (
	"context"
	"errors"
	"log/slog"

	"github.com/tetherwfh/tether/tunnel"
)

func startTUNPlane(context.Context, *tunnel.Config, string, forwardPolicy, bool, *slog.Logger) (dataPlane, error) {
	return nil, errors.New("wireguard.mode tun is Linux-only; use wireguard.mode: userspace")
}

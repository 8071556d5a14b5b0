package client

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/internal/netlab"
)

// TestLabTwoUplinks: a home on a slow, bloated DSL line (16/1 Mbit/s,
// 300 ms queues) with a phone tethered over USB (30/10 Mbit/s, 30 ms
// queues). `tether diag --uplinks`, through tetherd, measures each bound
// to its interface and names the phone, with both uplinks' figures. Both
// ends run as processes.
func TestLabTwoUplinks(t *testing.T) {
	phone := &netlab.Uplink2{
		Down: netlab.Link{Rate: 30 * netlab.Mbps, Queue: 30 * time.Millisecond},
		Up:   netlab.Link{Rate: 10 * netlab.Mbps, Queue: 30 * time.Millisecond},
	}
	s := startLabStackPhone(t, "dsl_bloated", phone, gwapi.DefaultPolicy(), EngineUserspace)
	l := s.lab
	ctx := context.Background()
	_, err := s.daemon.Up(ctx, localapi.ModeAuto)
	require.NoError(t, err)
	require.Eventually(t, func() bool { st, err := s.daemon.Status(ctx); return err == nil && st.State == localapi.StateConnected },
		30*time.Second, 100*time.Millisecond)

	// By hand, through the daemon.
	cli := filepath.Join(filepath.Dir(s.dArgs[0]), "tether")
	out, err := l.Home.Run(ctx, cli, "diag", "--uplinks", "--socket", s.daemon.Socket)
	require.NoError(t, err, out)
	t.Logf("tether diag --uplinks:\n%s", out)
	assert.Contains(t, out, "phone (usb0)")
	assert.Contains(t, out, "switch to the phone for this call")
}

package netdiag_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/internal/netlab"
	"github.com/tetherwfh/tether/netdiag"
)

// TestLabUplinks: a home on a slow, bloated DSL line with a phone
// tethered over USB. Each uplink is measured with its sockets bound to
// it, and the phone is named the better one, with both lines' figures.
func TestLabUplinks(t *testing.T) {
	l := netlab.NewConfig(t, netlab.Config{Profile: netlab.Profiles["dsl_bloated"], Phone: &netlab.Uplink2{
		Down: netlab.Link{Rate: 30 * netlab.Mbps, Queue: 30 * time.Millisecond},
		Up:   netlab.Link{Rate: 10 * netlab.Mbps, Queue: 30 * time.Millisecond},
	}})
	server := startMeasurement(t, l)
	ups, err := netdiag.ListUplinks(l.Home.Do)
	require.NoError(t, err)
	require.Len(t, ups, 2)
	assert.Equal(t, netdiag.Uplink{Interface: netlab.IfHome, Type: "virtual", Default: true}, ups[0])
	assert.Equal(t, netlab.IfHomePhone, ups[1].Interface)
	assert.Equal(t, "phone (usb0)", ups[1].Label())

	cfg := netdiag.Config{Server: server, Netns: l.Home.Do,
		DNS: netdiag.DNSConfig{ResolvConf: l.ResolvConf(), ProbeName: netlab.WebName, TestDomain: "internet.test."}}
	rep, err := netdiag.CompareUplinks(context.Background(), cfg, ups)
	require.NoError(t, err)
	require.NotNil(t, rep.Uplinks)
	c := rep.Uplinks
	t.Logf("uplinks: %s", c.Recommendation)
	require.Len(t, c.Uplinks, 2)
	home, phone := c.Uplinks[0], c.Uplinks[1]
	t.Logf("eth0: %+v", home)
	t.Logf("usb0: %+v", phone)
	// The main report is the default uplink's, measured on it.
	assert.Equal(t, netlab.IfHome, rep.Network.Interface)
	// Each run measured its own line: the DSL's 1 Mbit/s up and deep
	// queue, the phone's 10 Mbit/s and short one.
	assert.InDelta(t, 0.95, home.UploadMbps, 0.3, "home line up")
	assert.InDelta(t, 9.5, phone.UploadMbps, 2.5, "phone up")
	assert.Greater(t, home.IncreaseMS, 150.0, "the DSL queue under load")
	assert.Less(t, phone.IncreaseMS, 80.0, "the phone's queue under load")
	assert.Equal(t, netlab.IfHomePhone, c.Best)
	assert.True(t, c.Switch)
	assert.Contains(t, c.Recommendation, "switch to the phone for this call")
	assert.Contains(t, c.Recommendation, "phone (usb0): ")
	assert.Contains(t, c.Recommendation, "Ethernet (eth0): ")
}

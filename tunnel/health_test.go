package tunnel

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeriveHealth(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		now      time.Duration // since Up
		s        sample
		attempts int
		want     Health
	}{
		{"just up", 2 * time.Second, sample{}, 1, HealthConnecting},
		{"no handshake after 90 s", 91 * time.Second, sample{}, 18, HealthDown},
		{"wireguard-go gave up early", 30 * time.Second, sample{}, 18, HealthDown},
		{"fresh handshake", 10 * time.Second, sample{lastHandshake: t0.Add(5 * time.Second)}, 0, HealthUp},
		{"handshake older than 180 s", 400 * time.Second, sample{lastHandshake: t0.Add(200 * time.Second)}, 0, HealthDown},
		{"sent, nothing back for 14 s", 100 * time.Second, sample{lastHandshake: t0.Add(90 * time.Second), unansweredFrom: t0.Add(86 * time.Second)}, 1, HealthUp},
		{"sent, nothing back for 15 s", 100 * time.Second, sample{lastHandshake: t0.Add(90 * time.Second), unansweredFrom: t0.Add(85 * time.Second)}, 2, HealthStalled},
		{"retrying after a handshake", 100 * time.Second, sample{lastHandshake: t0.Add(50 * time.Second)}, 18, HealthDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := deriveHealth(t0.Add(tc.now), t0, tc.s, tc.attempts)
			assert.Equal(t, tc.want, got, why)
			if got != HealthUp {
				assert.NotEmpty(t, why, "every unhealthy state says why")
			}
		})
	}
}

func TestKillSwitchRuleset(t *testing.T) {
	var got string
	k := &KillSwitch{Iface: "tether0", FwMark: DefaultFwMark,
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.18.2.2:51820"), netip.MustParseAddrPort("[2001:db8::1]:51820")},
		AllowLAN:  pfx("192.168.77.10/24"),
		Run:       func(_ context.Context, rs string) error { got = rs; return nil }}
	require.NoError(t, k.Install(context.Background()))
	// Replacing a leftover table is one transaction: declare, delete, add.
	assert.True(t, strings.HasPrefix(got, "table inet tether_killswitch {}\ndelete table inet tether_killswitch\ntable inet tether_killswitch {"))
	for _, want := range []string{
		"policy drop;",
		`oifname "lo" accept`,
		`oifname "tether0" accept`,
		"meta mark 0xca6c accept",
		"ip daddr 198.18.2.2 udp dport 51820 accept",
		"ip6 daddr 2001:db8::1 udp dport 51820 accept",
		"ip daddr 192.168.77.0/24 accept",
	} {
		assert.Contains(t, got, want)
	}
	require.NoError(t, k.Remove(context.Background()))
	assert.Equal(t, "table inet tether_killswitch {}\ndelete table inet tether_killswitch\n", got)
}

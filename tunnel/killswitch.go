package tunnel

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// KillSwitchTable is the nftables table the kill switch owns. Tether
// touches no other table.
const KillSwitchTable = "tether_killswitch"

// KillSwitch is the fail-closed firewall: while it is installed, nothing
// leaves the host except through the tunnel interface, to the gateway
// endpoints, over loopback, DHCP and IPv6 neighbour discovery, and to the
// LAN when allowed. It uses nft(8) transactions, as wg-quick does, so each
// change is atomic: replacing the rules never opens a gap.
type KillSwitch struct {
	Iface     string
	FwMark    uint32
	Endpoints []netip.AddrPort
	AllowLAN  []netip.Prefix
	// Run feeds a ruleset to nft -f -; nil means exec. Tests record it.
	Run func(ctx context.Context, ruleset string) error
}

// Ruleset is the nft script Install loads. Declaring the table and then
// deleting it makes the script work whether or not a previous run (or a
// crash) left the table behind; nft applies the whole file atomically.
func (k *KillSwitch) Ruleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", KillSwitchTable, KillSwitchTable)
	fmt.Fprintf(&b, "table inet %s {\n  chain output {\n    type filter hook output priority filter; policy drop;\n", KillSwitchTable)
	b.WriteString("    oifname \"lo\" accept\n")
	fmt.Fprintf(&b, "    oifname %q accept\n", k.Iface)
	if k.FwMark != 0 {
		fmt.Fprintf(&b, "    meta mark 0x%x accept\n", k.FwMark)
	}
	for _, ep := range k.Endpoints {
		fam := "ip"
		if ep.Addr().Is6() {
			fam = "ip6"
		}
		fmt.Fprintf(&b, "    %s daddr %s udp dport %d accept\n", fam, ep.Addr(), ep.Port())
	}
	for _, p := range k.AllowLAN {
		fam := "ip"
		if p.Addr().Is6() {
			fam = "ip6"
		}
		fmt.Fprintf(&b, "    %s daddr %s accept\n", fam, p.Masked())
	}
	b.WriteString("    udp sport 68 udp dport 67 accept\n")
	b.WriteString("    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept\n")
	b.WriteString("    counter reject with icmpx admin-prohibited\n")
	b.WriteString("  }\n}\n")
	return b.String()
}

func (k *KillSwitch) run(ctx context.Context, ruleset string) error {
	if k.Run != nil {
		return k.Run(ctx, ruleset)
	}
	return nftRun(ctx, ruleset)
}

func nftRun(ctx context.Context, ruleset string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tunnel: kill switch: nft: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Install puts the rules in place, replacing any left by a previous run.
func (k *KillSwitch) Install(ctx context.Context) error { return k.run(ctx, k.Ruleset()) }

// Remove deletes the table if it exists. Idempotent.
func (k *KillSwitch) Remove(ctx context.Context) error {
	return k.run(ctx, fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", KillSwitchTable, KillSwitchTable))
}

// RemoveKillSwitch removes the kill switch, whoever installed it (a held
// one, or one a crash left behind). Idempotent.
func RemoveKillSwitch(ctx context.Context) error { return (&KillSwitch{}).Remove(ctx) }

// LeftoverKillSwitch reports whether a kill switch table exists, e.g. after
// a crash. The daemon decides at start whether to keep blocking (it will
// reconnect fail-closed) or remove it (the user turned the tunnel off).
func LeftoverKillSwitch(ctx context.Context) (bool, error) {
	out, err := exec.CommandContext(ctx, "nft", "list", "tables", "inet").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("tunnel: kill switch: nft list tables: %w: %s", err, bytes.TrimSpace(out))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "table inet "+KillSwitchTable {
			return true, nil
		}
	}
	return false, nil
}

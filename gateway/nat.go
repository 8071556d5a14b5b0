package gateway

import (
	"fmt"
	"net/netip"
	"strings"
)

// NATTable is the nftables table the TUN data plane owns. The gateway
// creates it at start, replaces it whole, deletes it at exit, and touches
// no other table.
const NATTable = "tether_gateway"

// natRules is the TUN data plane's firewall and NAT.
type natRules struct {
	iface       string
	pol         forwardPolicy
	masqCompany bool
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ip"
	}
	return "ip6"
}

// set writes an nft anonymous set of prefixes of one family.
func set(ps []netip.Prefix, fam string) string {
	var s []string
	for _, p := range ps {
		if family(p) == fam {
			s = append(s, p.Masked().String())
		}
	}
	if len(s) == 0 {
		return ""
	}
	return "{ " + strings.Join(s, ", ") + " }"
}

// ruleset is the nft script that installs the table: forwarding for the
// tunnel interface and masquerade for full-tunnel egress. Declaring the
// table and deleting it first makes the script replace a table a crash
// left behind; nft applies the file atomically.
//
//   - Peers never reach each other (tunnel in, tunnel out: drop).
//   - Peers reach the company prefixes, and the internet when allowed.
//   - Into the tunnel, only replies: nothing outside opens a connection
//     to a laptop.
//   - Internet egress is masqueraded behind the gateway's address. The
//     company prefixes see tunnel addresses unless masquerade_company is
//     on (then the company network needs no route back to the pool).
func (n natRules) ruleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", NATTable, NATTable)
	fmt.Fprintf(&b, "table inet %s {\n", NATTable)
	b.WriteString("  chain forward {\n    type filter hook forward priority filter; policy accept;\n")
	fmt.Fprintf(&b, "    iifname %q oifname %q counter drop\n", n.iface, n.iface)
	for _, fam := range []string{"ip", "ip6"} {
		if s := set(n.pol.company, fam); s != "" {
			fmt.Fprintf(&b, "    iifname %q %s daddr %s counter accept\n", n.iface, fam, s)
		}
	}
	if n.pol.internet {
		fmt.Fprintf(&b, "    iifname %q counter accept\n", n.iface)
	} else {
		fmt.Fprintf(&b, "    iifname %q counter reject with icmpx admin-prohibited\n", n.iface)
	}
	fmt.Fprintf(&b, "    oifname %q ct state established,related accept\n", n.iface)
	fmt.Fprintf(&b, "    oifname %q counter drop\n", n.iface)
	b.WriteString("  }\n")
	b.WriteString("  chain postrouting {\n    type nat hook postrouting priority srcnat;\n")
	fam := family(n.pol.pool)
	pool := n.pol.pool.Masked()
	company := set(n.pol.company, fam)
	if n.masqCompany && company != "" {
		fmt.Fprintf(&b, "    %s saddr %s oifname != %q %s daddr %s counter masquerade\n", fam, pool, n.iface, fam, company)
	}
	if n.pol.internet {
		if company != "" {
			fmt.Fprintf(&b, "    %s saddr %s oifname != %q %s daddr != %s counter masquerade\n", fam, pool, n.iface, fam, company)
		} else {
			fmt.Fprintf(&b, "    %s saddr %s oifname != %q counter masquerade\n", fam, pool, n.iface)
		}
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

// removeRuleset deletes the table whether or not it exists.
func removeRuleset() string {
	return fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", NATTable, NATTable)
}

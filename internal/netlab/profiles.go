package netlab

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rate is a link rate in bits per second.
type Rate int64

// Rate units.
const (
	Kbps Rate = 1000
	Mbps Rate = 1000 * Kbps
)

func (r Rate) String() string {
	switch {
	case r >= Mbps && r%Mbps == 0:
		return strconv.FormatInt(int64(r/Mbps), 10) + "Mbit/s"
	case r >= Mbps:
		return strconv.FormatFloat(float64(r)/float64(Mbps), 'f', 1, 64) + "Mbit/s"
	default:
		return strconv.FormatInt(int64(r/Kbps), 10) + "kbit/s"
	}
}

// Link shapes one direction of the ISP router with a token bucket (tbf).
type Link struct {
	// Rate is the bottleneck rate; zero leaves the direction unshaped.
	Rate Rate
	// Queue is how long the bottleneck queue may hold packets before tail
	// drop: tbf's "latency". A deep queue is what makes bufferbloat.
	Queue time.Duration
}

// Impairment is what the userspace relay does to UDP packets, in each
// direction, because this kernel has no netem.
type Impairment struct {
	Delay  time.Duration // added one-way delay
	Jitter time.Duration // uniform ± around Delay; packets may reorder
	Loss   float64       // drop probability, 0..1
	Rate   Rate          // relay rate limit; zero is unlimited
}

// Load is a background load generator: TCP bulk streams between home and
// internet that run for the lab's whole life, like a family member's
// download or a cloud backup.
type Load struct {
	DownStreams int
	UpStreams   int
}

// Well-known ports the lab's profiles refer to.
const (
	WireGuardPort = 51820 // WireGuard's customary listen port
	STAMPPort     = 862   // RFC 8762 §4: the STAMP well-known port
)

// Profile describes a home line as data. Services named here that land in
// later issues (for example the company gateway) are started by the tests
// that need them; everything the ISP side does is the lab's own.
type Profile struct {
	Name        string
	Description string

	// Down shapes ISP→home; Up shapes home→ISP.
	Down, Up Link

	// MTU, when non-zero, is set on both ends of the ISP's uplink, so that
	// path MTU discovery toward the internet and the gateway sees it.
	MTU int

	// BlockUDPPorts are destination UDP ports the ISP router drops on the
	// way out, as hotel and guest networks do to VPNs.
	BlockUDPPorts []uint16

	// DNSHijack makes the home router's resolver rewrite NXDOMAIN answers
	// into an address of an "assist" page, as some ISPs do.
	DNSHijack bool

	// DNSIntercept makes the ISP router redirect every DNS query from
	// home, UDP and TCP port 53 to any address, to its own resolver
	// (nftables DNAT), as some ISPs' routers do: answers come back from
	// the address asked, so only a query to an address with no DNS server
	// shows it.
	DNSIntercept bool

	// CaptivePortal makes the ISP router redirect all HTTP to a login page
	// and drop all other forwarded traffic, as an unauthenticated hotspot
	// does. DNS to the home router still works.
	CaptivePortal bool

	// Impair, when set, sends UDP to the gateway's WireGuard and STAMP
	// ports through the userspace relay on the ISP router.
	Impair *Impairment

	// Background, when set, starts a load generator for the lab's life.
	Background *Load
}

// Profiles are the lab's home lines. Rates and queues follow common
// consumer plans: FTTH with a small, well-managed queue; DOCSIS and ADSL
// modems with the oversized FIFO buffers that make bufferbloat.
var Profiles = map[string]Profile{
	"fiber": {
		Name:        "fiber",
		Description: "FTTH 500/100 Mbit/s with short queues: a healthy line",
		Down:        Link{Rate: 500 * Mbps, Queue: 5 * time.Millisecond},
		Up:          Link{Rate: 100 * Mbps, Queue: 5 * time.Millisecond},
	},
	"cable_bloated": {
		Name:        "cable_bloated",
		Description: "DOCSIS 100/20 Mbit/s with 300 ms modem buffers",
		Down:        Link{Rate: 100 * Mbps, Queue: 300 * time.Millisecond},
		Up:          Link{Rate: 20 * Mbps, Queue: 300 * time.Millisecond},
	},
	"dsl_bloated": {
		Name:        "dsl_bloated",
		Description: "ADSL2+ 16/1 Mbit/s with 300 ms buffers",
		Down:        Link{Rate: 16 * Mbps, Queue: 300 * time.Millisecond},
		Up:          Link{Rate: 1 * Mbps, Queue: 300 * time.Millisecond},
	},
	"saturated": {
		Name:        "saturated",
		Description: "the cable_bloated line with someone else's bulk transfers filling it",
		Down:        Link{Rate: 100 * Mbps, Queue: 300 * time.Millisecond},
		Up:          Link{Rate: 20 * Mbps, Queue: 300 * time.Millisecond},
		Background:  &Load{DownStreams: 4, UpStreams: 2},
	},
	"udp_blocked": {
		Name:          "udp_blocked",
		Description:   "a guest network that drops UDP to the WireGuard port",
		Down:          Link{Rate: 100 * Mbps, Queue: 20 * time.Millisecond},
		Up:            Link{Rate: 20 * Mbps, Queue: 20 * time.Millisecond},
		BlockUDPPorts: []uint16{WireGuardPort},
	},
	"dns_hijack": {
		Name:        "dns_hijack",
		Description: "a home router whose resolver rewrites NXDOMAIN to an ad page",
		Down:        Link{Rate: 100 * Mbps, Queue: 20 * time.Millisecond},
		Up:          Link{Rate: 20 * Mbps, Queue: 20 * time.Millisecond},
		DNSHijack:   true,
	},
	"dns_intercept": {
		Name:         "dns_intercept",
		Description:  "a home router that answers every port-53 packet itself, whatever address it was sent to",
		Down:         Link{Rate: 100 * Mbps, Queue: 20 * time.Millisecond},
		Up:           Link{Rate: 20 * Mbps, Queue: 20 * time.Millisecond},
		DNSIntercept: true,
	},
	"captive_portal": {
		Name:          "captive_portal",
		Description:   "a hotspot that redirects HTTP to a login page until you sign in",
		Down:          Link{Rate: 50 * Mbps, Queue: 20 * time.Millisecond},
		Up:            Link{Rate: 10 * Mbps, Queue: 20 * time.Millisecond},
		CaptivePortal: true,
	},
	"lossy": {
		Name:        "lossy",
		Description: "a line that loses 5% of UDP to the gateway each way and adds 10±5 ms each way",
		Down:        Link{Rate: 100 * Mbps, Queue: 20 * time.Millisecond},
		Up:          Link{Rate: 20 * Mbps, Queue: 20 * time.Millisecond},
		Impair:      &Impairment{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.05},
	},
	"mtu_limited": {
		Name:        "mtu_limited",
		Description: "a PPPoE-style uplink whose MTU is 1400",
		Down:        Link{Rate: 100 * Mbps, Queue: 20 * time.Millisecond},
		Up:          Link{Rate: 20 * Mbps, Queue: 20 * time.Millisecond},
		MTU:         1400,
	},
}

// ProfileNames returns the profile names, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupProfile returns the named profile, or an error listing the names.
func LookupProfile(name string) (Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("netlab: unknown profile %q (have: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// Validate reports a profile the lab cannot build.
func (p Profile) Validate() error {
	for _, l := range []struct {
		dir  string
		link Link
	}{{"down", p.Down}, {"up", p.Up}} {
		if l.link.Rate < 0 {
			return fmt.Errorf("netlab: profile %s: %s rate %d is negative", p.Name, l.dir, l.link.Rate)
		}
		if l.link.Rate > 0 && l.link.Rate < 8*Kbps {
			return fmt.Errorf("netlab: profile %s: %s rate %v is below tbf's useful minimum of 8kbit/s", p.Name, l.dir, l.link.Rate)
		}
		if l.link.Rate > 0 && l.link.Queue <= 0 {
			return fmt.Errorf("netlab: profile %s: %s is shaped but has no queue length", p.Name, l.dir)
		}
	}
	if p.MTU != 0 && (p.MTU < 1280 || p.MTU > 9000) {
		return fmt.Errorf("netlab: profile %s: MTU %d is outside 1280..9000", p.Name, p.MTU)
	}
	if p.Impair != nil {
		if err := p.Impair.Validate(); err != nil {
			return fmt.Errorf("netlab: profile %s: %w", p.Name, err)
		}
	}
	if p.Background != nil && (p.Background.DownStreams < 0 || p.Background.UpStreams < 0 || p.Background.DownStreams+p.Background.UpStreams == 0) {
		return fmt.Errorf("netlab: profile %s: background load needs at least one stream", p.Name)
	}
	return nil
}

// Validate reports settings the relay cannot honour.
func (im Impairment) Validate() error {
	switch {
	case im.Delay < 0 || im.Jitter < 0:
		return fmt.Errorf("impairment: delay and jitter must not be negative")
	case im.Jitter > im.Delay:
		return fmt.Errorf("impairment: jitter %v exceeds delay %v", im.Jitter, im.Delay)
	case im.Loss < 0 || im.Loss > 1:
		return fmt.Errorf("impairment: loss %v is outside 0..1", im.Loss)
	case im.Rate < 0:
		return fmt.Errorf("impairment: rate must not be negative")
	}
	return nil
}

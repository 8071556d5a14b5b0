package netdiag

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherwfh/tether/netdiag/report"
)

// DefaultRoute is one IPv4 default route: a computer with a phone
// tethered over USB, or on Wi-Fi and Ethernet at once, has one per
// uplink, each with its metric (the lowest is in use).
type DefaultRoute struct {
	Interface string
	Gateway   netip.Addr // invalid for a point-to-point link
	Metric    int
}

// ParseDefaultRoutes reads the default routes in /proc/net/route's format,
// lowest metric first. Lines it cannot read are skipped.
func ParseDefaultRoutes(b []byte) []DefaultRoute {
	var out []DefaultRoute
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" || f[0] == "" || len(f[0]) > 15 {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 16)
		if err != nil || flags&0x1 == 0 { // RTF_UP
			continue
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil || metric < 0 {
			continue
		}
		r := DefaultRoute{Interface: f[0], Metric: metric}
		if gw, err := hex.DecodeString(f[2]); err == nil && len(gw) == 4 {
			var a [4]byte
			binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(gw))
			if addr := netip.AddrFrom4(a); !addr.IsUnspecified() {
				r.Gateway = addr
			}
		} else {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b DefaultRoute) int { return cmp.Compare(a.Metric, b.Metric) })
	return out
}

// Uplink is an interface this computer can reach the internet through.
type Uplink struct {
	Interface string
	// Type is as in report.NetworkReport (wifi, ethernet, tethered...).
	Type string
	// Default: its route has the lowest metric, so traffic uses it now.
	Default bool
}

// Label names the uplink for a person: "Wi-Fi (wlan0)", "phone (usb0)".
func (u Uplink) Label() string {
	kind := u.Type
	if kind == "virtual" || kind == "unknown" || kind == "" {
		kind = typeFromName(u.Interface)
	}
	switch kind {
	case "wifi":
		return "Wi-Fi (" + u.Interface + ")"
	case "ethernet":
		return "Ethernet (" + u.Interface + ")"
	case "tethered":
		return "phone (" + u.Interface + ")"
	case "cellular":
		return "mobile (" + u.Interface + ")"
	}
	return u.Interface
}

// typeFromName guesses from the naming schemes Linux and macOS use, for
// links whose driver says nothing (a VM's, a lab's veth).
func typeFromName(name string) string {
	switch {
	case strings.HasPrefix(name, "wl"):
		return "wifi"
	case strings.HasPrefix(name, "usb"), strings.HasPrefix(name, "rndis"), strings.HasPrefix(name, "enx"):
		return "tethered"
	case strings.HasPrefix(name, "wwan"), strings.HasPrefix(name, "ww"):
		return "cellular"
	case strings.HasPrefix(name, "eth"), strings.HasPrefix(name, "en"):
		return "ethernet"
	}
	return ""
}

// ListUplinks lists the interfaces with an IPv4 default route that are
// up, in metric order (the one in use first), leaving out those named in
// exclude (the tunnel's own interface). netns, if set, runs the lookup
// where the probes run.
func ListUplinks(netns Netns, exclude ...string) ([]Uplink, error) {
	var out []Uplink
	err := netns.run(func() error {
		routes, err := defaultRoutes()
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, r := range routes {
			if seen[r.Interface] || slices.Contains(exclude, r.Interface) {
				continue
			}
			seen[r.Interface] = true
			ifi, err := net.InterfaceByName(r.Interface)
			if err != nil || ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagPointToPoint != 0 {
				continue // down, gone, or a tunnel of someone else's
			}
			out = append(out, Uplink{Interface: r.Interface, Type: localNetwork(r.Interface, nil).Type, Default: len(out) == 0})
		}
		return nil
	})
	return out, err
}

// CompareUplinks measures each uplink with a full run bound to it, one
// after the other so they do not share this computer's attention, and
// recommends the one that suits a call best. cfg is the run's
// configuration; its Interface is set per uplink. The returned report is
// the default uplink's, with the comparison in Uplinks.
func CompareUplinks(ctx context.Context, cfg Config, uplinks []Uplink) (*report.Report, error) {
	if len(uplinks) == 0 {
		return nil, fmt.Errorf("netdiag: no uplink to compare")
	}
	var main *report.Report
	cmpRep := &report.UplinksReport{}
	for _, u := range uplinks {
		c := cfg
		c.Interface = u.Interface
		cl, err := New(c)
		if err != nil {
			return nil, err
		}
		rep := cl.Run(ctx, report.ModeFull)
		if main == nil || u.Default {
			main = rep
		}
		cmpRep.Uplinks = append(cmpRep.Uplinks, uplinkResult(u, rep))
		if ctx.Err() != nil {
			break
		}
	}
	chooseUplink(cmpRep)
	main.Uplinks = cmpRep
	return main, nil
}

func uplinkResult(u Uplink, rep *report.Report) report.UplinkResult {
	p := pathResult(rep)
	return report.UplinkResult{Interface: u.Interface, Type: u.Type, Label: u.Label(), Default: u.Default,
		IdleMS: p.IdleMS, IncreaseMS: p.IncreaseMS, RPM: p.RPM, DownloadMbps: p.DownloadMbps, UploadMbps: p.UploadMbps, Error: p.Error}
}

// A call needs little bandwidth and a short queue: an uplink qualifies
// with callUpMbps up and callDownMbps down, and among those the one whose
// latency under load is lowest wins. Switching is only suggested when the
// winner is clearly better: switchGainMS less latency under load and
// under switchRatio of it, or switchRatio times the upload when the one
// in use does not qualify.
const (
	callUpMbps   = 1.5
	callDownMbps = 3
	switchGainMS = 50
	switchRatio  = 0.5
)

func loadedMS(r report.UplinkResult) float64 { return r.IdleMS + r.IncreaseMS }

func qualifies(r report.UplinkResult) bool {
	return r.Error == "" && r.UploadMbps >= callUpMbps && r.DownloadMbps >= callDownMbps
}

// chooseUplink picks Best and writes the recommendation.
func chooseUplink(c *report.UplinksReport) {
	var best, cur *report.UplinkResult
	for i := range c.Uplinks {
		r := &c.Uplinks[i]
		if r.Default {
			cur = r
		}
		if r.Error != "" {
			continue
		}
		if best == nil || better(*r, *best) {
			best = r
		}
	}
	if best == nil {
		c.Recommendation = "No uplink could be measured."
		return
	}
	c.Best = best.Interface
	if cur != nil && cur != best {
		switch {
		case cur.Error != "":
			c.Switch = true
		case !qualifies(*cur) && qualifies(*best):
			c.Switch = true
		case qualifies(*cur) && loadedMS(*cur)-loadedMS(*best) >= switchGainMS && loadedMS(*best) <= switchRatio*loadedMS(*cur):
			c.Switch = true
		case !qualifies(*cur) && !qualifies(*best) && best.UploadMbps*switchRatio >= cur.UploadMbps:
			c.Switch = true
		}
	}
	parts := make([]string, 0, len(c.Uplinks))
	for _, r := range c.Uplinks {
		if r.Error != "" {
			parts = append(parts, fmt.Sprintf("%s: %s", r.Label, r.Error))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s up, %s down, +%.0f ms under load", r.Label, mbps(r.UploadMbps), mbps(r.DownloadMbps), r.IncreaseMS))
	}
	s := strings.Join(parts, "; ")
	switch {
	case c.Switch:
		c.Recommendation = s + ": switch to " + shortLabel(*best) + " for this call."
	case len(c.Uplinks) == 1:
		c.Recommendation = s + "."
	default:
		c.Recommendation = s + ": stay on " + shortLabel(*best) + "."
	}
}

// better: a qualifying uplink beats one that is not; between two that
// qualify the lower latency under load wins; between two that do not,
// the higher upload.
func better(a, b report.UplinkResult) bool {
	qa, qb := qualifies(a), qualifies(b)
	switch {
	case qa != qb:
		return qa
	case qa:
		return loadedMS(a) < loadedMS(b)
	default:
		return a.UploadMbps > b.UploadMbps
	}
}

// shortLabel is "the phone", "Wi-Fi", "Ethernet" or the interface name.
func shortLabel(r report.UplinkResult) string {
	l := r.Label
	if i := strings.Index(l, " ("); i > 0 {
		l = l[:i]
	}
	if l == "phone" {
		return "the phone"
	}
	return l
}

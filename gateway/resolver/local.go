package resolver

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// LocalZone is a zone the resolver answers itself: the company's internal
// names. Records are in zone-file syntax, relative to the zone or fully
// qualified ("intranet 300 IN A 10.77.0.10").
type LocalZone struct {
	Name    string   `yaml:"name"`
	Records []string `yaml:"records"`
}

// localZones is the authoritative link.
type localZones struct {
	zones map[string]*zone // by origin
}

type zone struct {
	origin string
	soa    *dns.SOA
	names  map[string]map[uint16][]dns.RR
	// packed holds each name's records of each type in wire format, owner
	// compressed to the question (offset 12), for the UDP fast path.
	packed map[packedKey]packedRRs
}

type packedKey struct {
	name  string
	qtype uint16
}

type packedRRs struct {
	wire  []byte
	count uint16
}

// pack fills z.packed from z.names.
func (z *zone) pack() error {
	z.packed = map[packedKey]packedRRs{}
	buf := make([]byte, 65535)
	for name, byType := range z.names {
		for t, rrs := range byType {
			if t == dns.TypeSOA {
				continue // the slow path answers the zone's own SOA
			}
			var p packedRRs
			for _, rr := range rrs {
				n, err := dns.PackRR(rr, buf, 0, nil, false)
				if err != nil {
					return fmt.Errorf("local zone %s: packing %s: %w", z.origin, rr, err)
				}
				owner := len(name) + 1
				if name == "." {
					owner = 1
				}
				p.wire = append(p.wire, 0xC0, 12)
				p.wire = append(p.wire, buf[owner:n]...)
				p.count++
			}
			z.packed[packedKey{name, t}] = p
		}
	}
	return nil
}

func newLocalZones(cfg []LocalZone) (*localZones, error) {
	lz := &localZones{zones: map[string]*zone{}}
	for _, zc := range cfg {
		origin := strings.ToLower(dns.Fqdn(zc.Name))
		if _, ok := dns.IsDomainName(origin); !ok || origin == "." {
			return nil, fmt.Errorf("local zone %q: not a zone name", zc.Name)
		}
		z := &zone{origin: origin, names: map[string]map[uint16][]dns.RR{}}
		z.soa = &dns.SOA{Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
			Ns: "ns." + origin, Mbox: "hostmaster." + origin, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60}
		for i, rec := range zc.Records {
			zp := dns.NewZoneParser(strings.NewReader(rec), origin, "")
			zp.SetDefaultTTL(300)
			rr, ok := zp.Next()
			if err := zp.Err(); err != nil || !ok {
				return nil, fmt.Errorf("local zone %s, record %d (%q): %v", origin, i+1, rec, err)
			}
			rr.Header().Name = strings.ToLower(rr.Header().Name)
			if !dns.IsSubDomain(origin, rr.Header().Name) {
				return nil, fmt.Errorf("local zone %s, record %d: %s is outside the zone", origin, i+1, rr.Header().Name)
			}
			if z.names[rr.Header().Name] == nil {
				z.names[rr.Header().Name] = map[uint16][]dns.RR{}
			}
			t := rr.Header().Rrtype
			z.names[rr.Header().Name][t] = append(z.names[rr.Header().Name][t], rr)
		}
		if err := z.pack(); err != nil {
			return nil, err
		}
		lz.zones[origin] = z
	}
	return lz, nil
}

// find returns the most specific zone containing name.
func (lz *localZones) find(name string) *zone {
	for i := 0; ; {
		if z, ok := lz.zones[name[i:]]; ok {
			return z
		}
		j := strings.IndexByte(name[i:], '.')
		if j < 0 || i+j+1 >= len(name) {
			return nil
		}
		i += j + 1
	}
}

func (lz *localZones) wrap(next Handler) Handler {
	if len(lz.zones) == 0 {
		return next
	}
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		z := lz.find(req.Name)
		if z == nil {
			return next.Resolve(ctx, req)
		}
		req.Result = "local"
		m := new(dns.Msg)
		m.SetReply(req.Msg)
		m.Authoritative, m.RecursionAvailable = true, true
		rrs, exists := z.names[req.Name]
		switch {
		case req.Name == z.origin && req.Qtype == dns.TypeSOA:
			m.Answer = []dns.RR{dns.Copy(z.soa)}
		case exists && len(rrs[req.Qtype]) > 0:
			for _, rr := range rrs[req.Qtype] {
				c := dns.Copy(rr)
				c.Header().Name = req.Msg.Question[0].Name
				m.Answer = append(m.Answer, c)
			}
		case exists && len(rrs[dns.TypeCNAME]) > 0:
			m.Answer = append(m.Answer, dns.Copy(rrs[dns.TypeCNAME][0]))
		case exists || req.Name == z.origin || z.hasBelow(req.Name):
			m.Ns = []dns.RR{dns.Copy(z.soa)} // NODATA
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{dns.Copy(z.soa)}
		}
		if opt := req.Msg.IsEdns0(); opt != nil {
			m.SetEdns0(ednsSize, opt.Do())
		}
		return m, nil
	})
}

// wire answers a name with records of the asked type from the packed
// records; the rest of a zone (CNAME, NODATA, NXDOMAIN, the zone's SOA)
// goes to the chain, and a name in no zone goes on.
func (lz *localZones) wire(q *fastQuery, pkt, buf []byte) ([]byte, wireStep) {
	if len(lz.zones) == 0 {
		return nil, wireNext
	}
	name := q.nameString()
	z := lz.find(name)
	if z == nil {
		return nil, wireNext
	}
	rrs, ok := z.packed[packedKey{name, q.qtype}]
	if !ok {
		return nil, wireChain
	}
	resp, ok := packLocal(pkt, q, rrs, buf)
	if !ok {
		return nil, wireChain
	}
	q.result = "local"
	return resp, wireAnswered
}

// hasBelow reports whether name is an empty non-terminal (a name with
// records below it), which exists with no data (RFC 8020).
func (z *zone) hasBelow(name string) bool {
	for n := range z.names {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

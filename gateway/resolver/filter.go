package resolver

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/miekg/dns"
)

// BlockMode is how a blocked name is answered.
type BlockMode string

const (
	// BlockNXDomain answers NXDOMAIN (the default): the name does not exist.
	BlockNXDomain BlockMode = "nxdomain"
	// BlockZeroIP answers A 0.0.0.0 and AAAA ::, other types with no data.
	BlockZeroIP BlockMode = "zero_ip"
)

// blockTTL is the TTL of blocked answers and of the SOA that lets clients
// cache them negatively (RFC 2308): long enough to spare the resolver,
// short enough that an unblocked name works again within minutes.
const blockTTL = 300

// filter is the allow/block link.
type filter struct {
	set  atomic.Pointer[Set]
	mode BlockMode
	// blocked lists the categories that block; allow lists always apply.
	blocked map[string]bool
	// ede is 15 (Blocked: operator policy) or 17 (Filtered).
	ede uint16
}

// decide is the filter's verdict on name under the block policy: a
// block rule whose category does not block decides nothing.
func (f *filter) decide(name string) Decision {
	d := f.set.Load().Lookup(name)
	if d.Blocked && !f.blocked[d.Category] {
		d = Decision{}
	}
	return d
}

func (f *filter) wrap(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		d := f.decide(req.Name)
		req.Decision = d
		if !d.Blocked {
			return next.Resolve(ctx, req)
		}
		req.Result = "blocked"
		return f.blockedAnswer(req, d), nil
	})
}

// wire: the same decision; the blocked answer packed from the wire. One
// too big for the client goes to the chain, which truncates it.
func (f *filter) wire(q *fastQuery, pkt, buf []byte) ([]byte, wireStep) {
	d := f.decide(q.nameString())
	q.decision = d
	if !d.Blocked {
		return nil, wireNext
	}
	resp, ok := f.packBlocked(pkt, q, d, buf)
	if !ok {
		return nil, wireChain
	}
	q.result = "blocked"
	return resp, wireAnswered
}

// blockedAnswer answers per the block mode, always with a SOA in the
// authority section (so negative caching works) and, for EDNS clients, an
// RFC 8914 Extended DNS Error naming the category and the rule.
func (f *filter) blockedAnswer(req *Request, d Decision) *dns.Msg {
	q := req.Msg
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	m.Authoritative = false
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Question[0].Name, Rrtype: t, Class: dns.ClassINET, Ttl: blockTTL}
	}
	switch {
	case f.mode == BlockZeroIP && req.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: hdr(dns.TypeA), A: net.IPv4zero}}
	case f.mode == BlockZeroIP && req.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.IPv6zero}}
	case f.mode == BlockZeroIP:
		// NODATA: the name "exists" but has no such record.
	default:
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		// Owned by the question's name as asked, as the fast path does.
		m.Ns = []dns.RR{blockSOA(q.Question[0].Name)}
	}
	if opt := q.IsEdns0(); opt != nil {
		ext := m.SetEdns0(ednsSize, opt.Do())
		o := ext.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: f.ede, ExtraText: d.edeText()})
	}
	return m
}

func explainText(d Decision) string {
	s := fmt.Sprintf("blocked (%s) by list %s, rule %s", d.Category, d.List, d.Rule)
	if d.Line > 0 {
		s += fmt.Sprintf(", line %d", d.Line)
	}
	return s
}

// blockSOA is the synthetic SOA for a blocked name: its owner is the
// name itself, so a negative answer for it can be cached for blockTTL.
func blockSOA(name string) dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: blockTTL},
		Ns:      "filter.tether.invalid.",
		Mbox:    "hostmaster.tether.invalid.",
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: blockTTL,
	}
}

package resolver

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Request is one query moving down the chain.
type Request struct {
	Msg    *dns.Msg
	Client netip.Addr
	TCP    bool
	// Name is the question name, lower case, fully qualified; empty when
	// the message does not hold exactly one question (validate answers
	// FORMERR then).
	Name  string
	Qtype uint16
	// Result says which link answered, for metrics and the query log:
	// "blocked", "local", "cached", "stale", "forwarded", "refused",
	// "ratelimited", "failed".
	Result string
	// Decision is the filter's verdict when it looked.
	Decision Decision
}

// Handler is a link: it answers, or passes the request to next.
type Handler interface {
	Resolve(ctx context.Context, req *Request) (*dns.Msg, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*dns.Msg, error)

func (f HandlerFunc) Resolve(ctx context.Context, req *Request) (*dns.Msg, error) { return f(ctx, req) }

// errDrop tells the edge to send nothing (a rate-limited query).
var errDrop = errors.New("dropped")

// link is one step of the chain. wrap puts it in front of next; a link
// that is switched off returns next itself, and the last link ignores it.
type link interface {
	wrap(next Handler) Handler
}

// wireLink is a link the UDP fast path can also run, on a query parsed in
// place (fastpath.go). Its wire form decides exactly as its chain form
// does; TestFastPathMatchesChain, TestPathsAgree and FuzzFastPath check
// that.
type wireLink interface {
	link
	// wire runs the link on q, parsed from pkt; an answer is appended to
	// buf. It returns wireNext to go on to the next link, wireAnswered
	// with the answer (nil: send nothing), or wireChain to hand the query
	// to the chain, which runs from this same link on.
	wire(q *fastQuery, pkt, buf []byte) ([]byte, wireStep)
}

type wireStep uint8

const (
	wireNext wireStep = iota
	wireAnswered
	wireChain
)

// chainLinks is the resolver, outermost link first. Each link does one
// thing; this is the only place their order is decided. The UDP fast
// path runs this same slice, each link in its wire form, until a link
// without one (or a query it cannot answer from the wire) hands the query
// to the chain from that link on: both paths apply the same links in the
// same order, and no link runs twice.
func (r *Resolver) chainLinks() []link {
	return []link{
		r.limiter,   // 1. per-client rate limit with slip: first, so a flood is cut before any work it could make expensive
		validator{}, // 2. one question, one OPT of EDNS version 0; refuse ANY, zone transfers and non-IN classes
		r.filter,    // 3. exceptions and block rules by precedence ($important first): blocked answers carry EDE and SOA
		r.local,     // 4. company and local zones, authoritative
		r.cache,     // 5. answer from the cache; serve stale when upstreams fail; prefetch
		r.upstream,  // 6. forward to the upstreams (strategy, hygiene, TCP on TC)
	}
}

// buildChain wraps the links into handlers: chain[i] runs links i and
// after, so a query the fast path has taken through links 0..i-1 resumes
// at chain[i].
func (r *Resolver) buildChain() {
	r.links = r.chainLinks()
	r.wrapLinks()
}

func (r *Resolver) wrapLinks() {
	r.chain = make([]Handler, len(r.links))
	var h Handler
	for i := len(r.links) - 1; i >= 0; i-- {
		h = r.links[i].wrap(h)
		r.chain[i] = h
	}
}

// validator is the link that checks a query's shape and class. miekg's
// accept function has already rejected responses, opcodes other than
// QUERY and NOTIFY, and headers whose counts are out of range, but it
// reads only the header: unpacking trusts the packet, so a header that
// claims a question the packet lacks unpacks with none. The shape is
// therefore checked here, on the message the chain will read, whatever
// the header said.
type validator struct{}

func (validator) wrap(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		if m := checkShape(req.Msg); m != nil {
			req.Result = "refused"
			return m, nil
		}
		q := req.Msg.Question[0]
		switch {
		case q.Qclass != dns.ClassINET:
			req.Result = "refused"
			return reply(req.Msg, dns.RcodeRefused), nil
		case refusedType(q.Qtype):
			req.Result = "refused"
			return reply(req.Msg, dns.RcodeRefused), nil
		case req.Msg.Opcode != dns.OpcodeQuery:
			req.Result = "refused"
			return reply(req.Msg, dns.RcodeNotImplemented), nil
		case !validQName(req.Name):
			req.Result = "refused"
			return reply(req.Msg, dns.RcodeFormatError), nil
		}
		return next.Resolve(ctx, req)
	})
}

// wire: parseFast has accepted only QUERY with exactly one question and
// at most one OPT of version 0 with no options, so the shape holds; what
// the chain would refuse, it refuses.
func (validator) wire(q *fastQuery, _, _ []byte) ([]byte, wireStep) {
	if q.qclass != dns.ClassINET || refusedType(q.qtype) || q.qtype == dns.TypeOPT || !validQName(q.nameString()) {
		return nil, wireChain
	}
	return nil, wireNext
}

// refusedType: no amplifier (RFC 8482 lets a resolver decline ANY), and
// no zone transfers.
func refusedType(t uint16) bool {
	return t == dns.TypeANY || t == dns.TypeAXFR || t == dns.TypeIXFR
}

// checkShape returns the answer to a query no link may read: FORMERR
// unless it holds exactly one question (RFC 1035 section 4.1.2 allows
// more, but no server answers them) and at most one OPT record, in the
// additional section (RFC 6891 section 6.1.1); BADVERS, with our OPT of
// version 0, for an EDNS version other than 0 (section 6.1.3). It
// returns nil for a well-formed query.
func checkShape(q *dns.Msg) *dns.Msg {
	if len(q.Question) != 1 {
		return reply(q, dns.RcodeFormatError)
	}
	for _, sec := range [][]dns.RR{q.Answer, q.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				return reply(q, dns.RcodeFormatError)
			}
		}
	}
	var opt *dns.OPT
	for _, rr := range q.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				return reply(q, dns.RcodeFormatError)
			}
			opt = o
		}
	}
	if opt != nil && opt.Version() != 0 {
		m := reply(q, dns.RcodeBadVers)
		m.SetEdns0(ednsSize, opt.Do())
		return m
	}
	return nil
}

func validQName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok && len(name) <= 255
}

// reply makes an empty response to q with rcode.
func reply(q *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	return m
}

// clock is the resolver's time source; tests inject one.
type clock func() time.Time

package resolver

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Request is one query moving down the chain.
type Request struct {
	Msg    *dns.Msg
	Client netip.Addr
	TCP    bool
	// Name is the question name, lower case, fully qualified.
	Name  string
	Qtype uint16
	// Result says which link answered, for metrics and the query log:
	// "blocked", "local", "cached", "stale", "forwarded", "refused",
	// "failed".
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

// buildChain assembles the resolver, outermost link first. Each link does
// one thing; this is the only place their order is decided.
func (r *Resolver) buildChain() Handler {
	var h Handler = r.upstream // 7. forward to the upstreams (strategy, hygiene, TCP on TC)
	h = r.cache.wrap(h)        // 6. answer from the cache; serve stale when upstreams fail; prefetch
	h = r.local.wrap(h)        // 5. company and local zones, authoritative
	h = r.filter.wrap(h)       // 3-4. allow rules win, then block rules: blocked answers with EDE and SOA
	h = r.limiter.wrap(h)      // 2. per-client rate limit per /24 and /56, with slip
	h = validate(h)            // 1. normalize the name; refuse ANY and non-IN classes
	return h
}

// validate is the first link. miekg's accept function has already
// rejected responses, non-QUERY opcodes and question counts other than 1
// (FORMERR or NOTIMP) before a query reaches the chain.
func validate(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (*dns.Msg, error) {
		q := req.Msg.Question[0]
		req.Name, req.Qtype = strings.ToLower(dns.Fqdn(q.Name)), q.Qtype
		switch {
		case q.Qclass != dns.ClassINET:
			req.Result = "refused"
			return reply(req.Msg, dns.RcodeRefused), nil
		case q.Qtype == dns.TypeANY:
			// No amplifier: RFC 8482 lets a resolver decline ANY.
			req.Result = "refused"
			return reply(req.Msg, dns.RcodeRefused), nil
		case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
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

package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The UDP fast path answers the two commonest queries, a blocked name and
// a local name, straight from the wire: recvmmsg and sendmmsg move up to
// fastBatch packets per system call, the question is parsed in place, and
// the answer is written into a reused buffer from pre-packed pieces.
//
// It is not a second chain: it runs the chain's own links (chainLinks),
// in their order, each in its wire form, and stops at the first link that
// has none (the cache) or that cannot answer from the wire. The query then
// goes to miekg/dns and the chain, on a goroutine of its own, and resumes
// at that same link: the rate limiter, which comes first, charges each
// query once on either path. A query outside the plain form parseFast
// reads (EDNS options, compression in the question, other opcodes,
// malformed packets) goes to the chain whole. The two paths give the same
// answers; fastpath_test.go checks that query by query.
const (
	fastBatch   = 64
	fastBufSize = 4096
	// maxSlowInFlight bounds the queries handed to the chain at once; past
	// it, queries are dropped and clients retry.
	maxSlowInFlight = 1024
)

type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type v6batch struct{ *ipv6.PacketConn }

func (c v6batch) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return c.PacketConn.ReadBatch(ms, flags)
}
func (c v6batch) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	return c.PacketConn.WriteBatch(ms, flags)
}

// serveUDPFast serves conn until it is closed.
func (r *Resolver) serveUDPFast(conn *net.UDPConn) error {
	var bc batchConn
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		bc = ipv4.NewPacketConn(conn)
	} else {
		bc = v6batch{ipv6.NewPacketConn(conn)}
	}
	readers := max(1, runtime.GOMAXPROCS(0))
	sem := make(chan struct{}, maxSlowInFlight)
	var wg sync.WaitGroup
	errc := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- r.fastLoop(conn, bc, sem, &wg)
		}()
	}
	err := <-errc
	wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (r *Resolver) fastLoop(conn *net.UDPConn, bc batchConn, sem chan struct{}, wg *sync.WaitGroup) error {
	in := make([]ipv4.Message, fastBatch)
	out := make([]ipv4.Message, 0, fastBatch)
	bufs := make([][]byte, fastBatch)
	obufs := make([][]byte, fastBatch)
	for i := range in {
		bufs[i] = make([]byte, fastBufSize)
		obufs[i] = make([]byte, 0, 1232)
		in[i].Buffers = [][]byte{bufs[i]}
	}
	var fq fastQuery
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			return err
		}
		out = out[:0]
		for i := range n {
			pkt := bufs[i][:in[i].N]
			addr, _ := in[i].Addr.(*net.UDPAddr)
			if addr == nil || in[i].Flags&0x20 != 0 { // MSG_TRUNC: too big to parse
				continue
			}
			start := time.Now()
			resp, from, handled := r.fastAnswer(pkt, addr, &fq, obufs[len(out)][:0])
			if handled {
				if resp != nil {
					obufs[len(out)] = resp
					out = append(out, ipv4.Message{Buffers: [][]byte{resp}, Addr: addr})
				}
				r.observeFast(&fq, start)
				continue
			}
			// The slow path: miekg parses, the chain answers.
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			q := append([]byte(nil), pkt...)
			ua := *addr
			dec := fq.decision
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r.serveSlowUDP(conn, q, &ua, from, dec)
			}()
		}
		for len(out) > 0 {
			k, err := bc.WriteBatch(out, 0)
			if err != nil {
				break // a send error (an unreachable client) drops the batch's rest
			}
			out = out[k:]
		}
	}
}

// serveSlowUDP runs one query through miekg's checks and the chain from
// link from on; dec is the filter's decision when the fast path ran it.
func (r *Resolver) serveSlowUDP(conn *net.UDPConn, pkt []byte, addr *net.UDPAddr, from int, dec Decision) {
	if len(pkt) < 12 {
		return
	}
	var h dns.Header
	h.Id = binary.BigEndian.Uint16(pkt[0:])
	h.Bits = binary.BigEndian.Uint16(pkt[2:])
	h.Qdcount = binary.BigEndian.Uint16(pkt[4:])
	h.Ancount = binary.BigEndian.Uint16(pkt[6:])
	h.Nscount = binary.BigEndian.Uint16(pkt[8:])
	h.Arcount = binary.BigEndian.Uint16(pkt[10:])
	w := &udpWriter{conn: conn, addr: addr}
	switch dns.DefaultMsgAcceptFunc(h) {
	case dns.MsgIgnore:
		return
	case dns.MsgReject, dns.MsgRejectNotImplemented:
		rc := dns.RcodeFormatError
		if dns.DefaultMsgAcceptFunc(h) == dns.MsgRejectNotImplemented {
			rc = dns.RcodeNotImplemented
		}
		m := new(dns.Msg)
		m.Id, m.Response, m.Rcode = h.Id, true, rc
		m.Opcode = int(h.Bits>>11) & 0xF
		_ = w.WriteMsg(m)
		return
	}
	m := new(dns.Msg)
	if err := m.Unpack(pkt); err != nil {
		// As miekg's server does: FORMERR with the header echoed.
		x := new(dns.Msg)
		x.Id, x.Response, x.Rcode = h.Id, true, dns.RcodeFormatError
		_ = w.WriteMsg(x)
		return
	}
	r.serve(w, m, from, dec)
}

// udpWriter is the dns.ResponseWriter for slow-path queries.
type udpWriter struct {
	conn *net.UDPConn
	addr *net.UDPAddr
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.addr }
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.conn.WriteToUDP(b, w.addr)
	return err
}
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDP(b, w.addr) }
func (w *udpWriter) Close() error                { return nil }
func (w *udpWriter) TsigStatus() error           { return nil }
func (w *udpWriter) TsigTimersOnly(bool)         {}
func (w *udpWriter) Hijack()                     {}

// fastQuery is a query parsed in place.
type fastQuery struct {
	name     [255]byte // lower case, dotted, fully qualified
	nameLen  int
	qEnd     int // end of the question in the packet
	qtype    uint16
	qclass   uint16
	edns     bool
	udpSize  uint16
	do       bool
	result   string
	decision Decision
	client   netip.Addr
}

func (q *fastQuery) nameString() string { return b2s(q.name[:q.nameLen]) }

// parseFast parses a plain query: QUERY, one question with an uncompressed
// name of plain characters, no answer or authority records, and at most
// an OPT record of version 0 with no options. It reports false for
// anything else. It only decodes; what to answer is the links' business.
func parseFast(pkt []byte, q *fastQuery) bool {
	if len(pkt) < 12+5 {
		return false
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xF != 0 || flags&0x0200 != 0 { // QR, opcode, TC
		return false
	}
	if binary.BigEndian.Uint16(pkt[4:]) != 1 || binary.BigEndian.Uint16(pkt[6:]) != 0 || binary.BigEndian.Uint16(pkt[8:]) != 0 {
		return false
	}
	ar := binary.BigEndian.Uint16(pkt[10:])
	if ar > 1 {
		return false
	}
	off, n := 12, 0
	for {
		if off >= len(pkt) {
			return false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) || n+l+1 > len(q.name) {
			return false // a pointer, a bad label, or too long
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false // escapes and odd bytes: let miekg handle them
			}
			q.name[n] = c
			n++
		}
		q.name[n] = '.'
		n++
		off += l
	}
	if n == 0 {
		q.name[0] = '.'
		n = 1
	}
	q.nameLen = n
	if off+4 > len(pkt) {
		return false
	}
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	q.qEnd = off
	q.edns, q.do, q.udpSize = false, false, 0
	if ar == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = ext-rcode,
		// version, flags; no options.
		if off+11 != len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != dns.TypeOPT {
			return false
		}
		if pkt[off+6] != 0 { // EDNS version 0 only
			return false
		}
		if binary.BigEndian.Uint16(pkt[off+9:]) != 0 {
			return false
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[off+3:])
		q.do = pkt[off+7]&0x80 != 0
	} else if off != len(pkt) {
		return false
	}
	return true
}

// fastAnswer runs the chain's links in wire form on pkt. It reports
// handled with the answer (nil: drop it), or from, the link the chain
// resumes at (0 when pkt is not a plain query).
func (r *Resolver) fastAnswer(pkt []byte, addr *net.UDPAddr, q *fastQuery, buf []byte) (resp []byte, from int, handled bool) {
	q.decision, q.result = Decision{}, ""
	if !parseFast(pkt, q) {
		return nil, 0, false
	}
	q.client = addrFromUDP(addr)
	for i, l := range r.links {
		wl, ok := l.(wireLink)
		if !ok {
			return nil, i, false
		}
		switch resp, step := wl.wire(q, pkt, buf); step {
		case wireAnswered:
			return resp, i, true
		case wireChain:
			return nil, i, false
		}
	}
	return nil, len(r.links) - 1, false // not reached: the last link has no wire form
}

func addrFromUDP(a *net.UDPAddr) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.IP)
	return ip.Unmap()
}

// header writes the response header: ID and RD/CD from the query, QR and
// RA set.
func header(buf, pkt []byte, aa bool, rcode int, an, ns, ar uint16) []byte {
	flags := binary.BigEndian.Uint16(pkt[2:])
	f := uint16(0x8000) | flags&0x0100 | 0x0080 | flags&0x0010 | uint16(rcode&0xF)
	if aa {
		f |= 0x0400
	}
	buf = append(buf, pkt[0], pkt[1], byte(f>>8), byte(f))
	buf = binary.BigEndian.AppendUint16(buf, 1)
	buf = binary.BigEndian.AppendUint16(buf, an)
	buf = binary.BigEndian.AppendUint16(buf, ns)
	return binary.BigEndian.AppendUint16(buf, ar)
}

// packTruncated is an empty answer with TC set: the rate limiter's slip.
func packTruncated(pkt []byte, q *fastQuery, buf []byte) []byte {
	buf = header(buf, pkt, false, dns.RcodeSuccess, 0, 0, 0)
	buf[2] |= 0x02
	return append(buf, pkt[12:q.qEnd]...)
}

// appendOPT writes our OPT record: 1232-byte UDP size, the client's DO
// bit, and an optional EDE.
func appendOPT(buf []byte, do bool, ede uint16, text string) []byte {
	buf = append(buf, 0) // root
	buf = binary.BigEndian.AppendUint16(buf, dns.TypeOPT)
	buf = binary.BigEndian.AppendUint16(buf, ednsSize)
	var flags byte
	if do {
		flags = 0x80
	}
	buf = append(buf, 0, 0, flags, 0) // ext-rcode, version, DO, Z
	if ede == 0 {
		return binary.BigEndian.AppendUint16(buf, 0)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(4+2+len(text)))
	buf = binary.BigEndian.AppendUint16(buf, dns.EDNS0EDE)
	buf = binary.BigEndian.AppendUint16(buf, uint16(2+len(text)))
	buf = binary.BigEndian.AppendUint16(buf, ede)
	return append(buf, text...)
}

// soaRData is the blocked answers' SOA rdata, packed once.
var soaRData = func() []byte {
	soa := blockSOA("x.").(*dns.SOA)
	b := make([]byte, 512)
	n, err := dns.PackRR(soa, b, 0, nil, false)
	if err != nil {
		panic(err)
	}
	// Skip owner "x." (3 bytes), type, class, TTL, rdlength (10 bytes).
	return append([]byte(nil), b[13:n]...)
}()

func (f *filter) packBlocked(pkt []byte, q *fastQuery, d Decision, buf []byte) ([]byte, bool) {
	var an uint16
	rcode := dns.RcodeNameError
	zero := f.mode == BlockZeroIP
	if zero {
		rcode = dns.RcodeSuccess
		if q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA {
			an = 1
		}
	}
	var ns, ar uint16
	if an == 0 {
		ns = 1
	}
	if q.edns {
		ar = 1
	}
	buf = header(buf, pkt, false, rcode, an, ns, ar)
	buf = append(buf, pkt[12:q.qEnd]...)
	if an == 1 {
		buf = append(buf, 0xC0, 12)
		buf = binary.BigEndian.AppendUint16(buf, q.qtype)
		buf = binary.BigEndian.AppendUint16(buf, dns.ClassINET)
		buf = binary.BigEndian.AppendUint32(buf, blockTTL)
		if q.qtype == dns.TypeA {
			buf = binary.BigEndian.AppendUint16(buf, 4)
			buf = append(buf, 0, 0, 0, 0)
		} else {
			buf = binary.BigEndian.AppendUint16(buf, 16)
			buf = append(buf, make([]byte, 16)...)
		}
	} else {
		buf = append(buf, 0xC0, 12)
		buf = binary.BigEndian.AppendUint16(buf, dns.TypeSOA)
		buf = binary.BigEndian.AppendUint16(buf, dns.ClassINET)
		buf = binary.BigEndian.AppendUint32(buf, blockTTL)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(soaRData)))
		buf = append(buf, soaRData...)
	}
	if q.edns {
		buf = appendOPT(buf, q.do, f.ede, d.edeText())
	}
	if len(buf) > clientLimit(q) {
		return nil, false // let the slow path truncate properly
	}
	return buf, true
}

func clientLimit(q *fastQuery) int {
	if !q.edns {
		return dns.MinMsgSize
	}
	return max(dns.MinMsgSize, min(int(q.udpSize), ednsSize))
}

func packLocal(pkt []byte, q *fastQuery, rrs packedRRs, buf []byte) ([]byte, bool) {
	var ar uint16
	if q.edns {
		ar = 1
	}
	buf = header(buf, pkt, true, dns.RcodeSuccess, rrs.count, 0, ar)
	buf = append(buf, pkt[12:q.qEnd]...)
	buf = append(buf, rrs.wire...)
	if q.edns {
		buf = appendOPT(buf, q.do, 0, "")
	}
	if len(buf) > clientLimit(q) {
		return nil, false
	}
	return buf, true
}

func (r *Resolver) observeFast(q *fastQuery, start time.Time) {
	qt := dns.TypeToString[q.qtype]
	if qt == "" {
		qt = "other"
	}
	r.m.queries.WithLabelValues(qt, q.result).Inc()
	r.m.latency.WithLabelValues(q.result).Observe(time.Since(start).Seconds())
	if r.qlog.cfg.Enabled {
		req := &Request{Name: q.nameString(), Qtype: q.qtype, Result: q.result, Decision: q.decision, Client: q.client}
		req.Name = string([]byte(req.Name))
		r.qlog.add(req, time.Since(start))
	}
}

// serveUDP picks the fast path for a real UDP socket.
func (r *Resolver) serveUDP(ctx context.Context, pc net.PacketConn) (func() error, bool) {
	uc, ok := pc.(*net.UDPConn)
	if !ok || r.cfg.DisableFastPath {
		return nil, false
	}
	return func() error { return r.serveUDPFast(uc) }, true
}

package resolver

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"0.0.0.0 ads.example.com tracker.example\n127.0.0.1 localhost\n",
		"phish.example\n*.wild.example\n/^ads[0-9]+\\./\n",
		"[Adblock Plus 2.0]\n||malware.example^\n@@||good.example^$important\nexample.com##.x\n",
		"bücher.example\r\n\r\n# c\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(2))
	}
	formats := []Format{FormatHosts, FormatDomains, FormatAdblock}
	f.Fuzz(func(t *testing.T, data []byte, fi uint8) {
		format := formats[int(fi)%len(formats)]
		var rules []Rule
		st, err := ParseList(bytes.NewReader(data), format, "fuzz", func(r Rule) error {
			r.Name = strings.Clone(r.Name)
			rules = append(rules, r)
			return nil
		})
		if err != nil {
			t.Fatalf("ParseList failed on in-memory input: %v", err)
		}
		if st.Rules != len(rules) {
			t.Fatalf("stats say %d rules, emitted %d", st.Rules, len(rules))
		}
		for _, r := range rules {
			if r.Kind == KindRegex {
				continue
			}
			// Every emitted name is normalized: normalizing again is a no-op.
			if n, err := normalizeName(r.Name); err != nil || n != r.Name {
				t.Fatalf("rule name %q is not normalized (%q, %v)", r.Name, n, err)
			}
		}
		// And a set compiled from the same input agrees with the parser.
		s, err := Compile([]ListSpec{strList("fuzz", "ads", format, false, string(data))})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if r.Kind == KindDomain && !r.Allow {
				if d := s.Lookup(r.Name); !d.Blocked && !d.Allowed {
					t.Fatalf("rule %s does not block its own name", r)
				}
			}
		}
	})
}

// fakeWriter captures what the edge writes.
type fakeWriter struct {
	out *dns.Msg
	tcp bool
	// remote is the client's address; nil means 127.0.0.2.
	remote net.Addr
}

func (w *fakeWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *fakeWriter) RemoteAddr() net.Addr {
	if w.remote != nil {
		return w.remote
	}
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
}
func (w *fakeWriter) WriteMsg(m *dns.Msg) error {
	if _, err := m.Pack(); err != nil {
		return err
	}
	w.out = m
	return nil
}
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) Close() error                { return nil }
func (w *fakeWriter) TsigStatus() error           { return nil }
func (w *fakeWriter) TsigTimersOnly(bool)         {}
func (w *fakeWriter) Hijack()                     {}

// FuzzHandler feeds arbitrary packets through miekg's unpacking and accept
// rules into the resolver's edge, as the server would: nothing may panic,
// and whatever the edge writes must pack.
func FuzzHandler(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("intranet.corp.test.", dns.TypeA)
	q.SetEdns0(1232, true)
	b, _ := q.Pack()
	f.Add(b, false)
	q.SetQuestion("phishing.test.", dns.TypeAAAA)
	b, _ = q.Pack()
	f.Add(b, true)
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, false)
	// Counts that claim records the packet lacks (issue 13 case 4).
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 1, 0, 1, 0, 2}, true)
	r, err := New(f.Context(), Config{
		LocalZones: []LocalZone{{Name: "corp.test", Records: []string{"intranet IN A 10.77.0.10"}}},
		Lists:      []ListConfig{{Name: "p", Category: "phishing", Format: "domains", Path: writeList(f, "phishing.test\n*.ads.test\n/^x+y$/\n")}},
	}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		m := new(dns.Msg)
		if len(pkt) < 12 {
			return
		}
		var h dns.Header
		h.Id = uint16(pkt[0])<<8 | uint16(pkt[1])
		h.Bits = uint16(pkt[2])<<8 | uint16(pkt[3])
		h.Qdcount = uint16(pkt[4])<<8 | uint16(pkt[5])
		h.Ancount = uint16(pkt[6])<<8 | uint16(pkt[7])
		h.Nscount = uint16(pkt[8])<<8 | uint16(pkt[9])
		h.Arcount = uint16(pkt[10])<<8 | uint16(pkt[11])
		if dns.DefaultMsgAcceptFunc(h) != dns.MsgAccept {
			return
		}
		if err := m.Unpack(pkt); err != nil {
			return
		}
		w := &fakeWriter{tcp: tcp}
		panics := testutil.ToFloat64(r.m.panics)
		r.ServeDNS(w, m)
		if testutil.ToFloat64(r.m.panics) != panics {
			t.Fatalf("the chain panicked (recovered as SERVFAIL) on %x", pkt)
		}
		if w.out != nil && w.out.Id != m.Id {
			t.Fatalf("answer ID %d for query %d", w.out.Id, m.Id)
		}
	})
}

// FuzzUnpackPack: whatever miekg unpacks, it packs again, and the result
// unpacks to the same message. The resolver relies on this when it copies,
// caches and re-serializes answers.
func FuzzUnpackPack(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("example.com.", dns.TypeA)
	q.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	q.SetEdns0(1232, true)
	b, _ := q.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m := new(dns.Msg)
		if m.Unpack(pkt) != nil {
			return
		}
		out, err := m.Pack()
		if err != nil {
			return // some unpackable records can't be packed (miekg rejects them); not a crash
		}
		m2 := new(dns.Msg)
		if err := m2.Unpack(out); err != nil {
			t.Fatalf("repacked message does not unpack: %v", err)
		}
		if m2.String() != m.String() {
			t.Fatalf("round trip changed the message:\n%s\n---\n%s", m, m2)
		}
	})
}

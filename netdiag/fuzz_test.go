package netdiag

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/miekg/dns"
)

// The parsers of outside input: files the OS writes (resolv.conf,
// /proc/net/wireless), DNS answers from any resolver on any network, and
// the measurement server's documents. None may panic, hang or accept
// nonsense as fact.

func FuzzParseResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 192.168.1.1\nsearch home.arpa\n"))
	f.Add([]byte("# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"))
	f.Add([]byte("nameserver fe80::1%eth0\nnameserver ::ffff:10.0.0.1\ndomain example.com\n"))
	f.Add([]byte("nameserver\nnameserver not-an-ip\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := ParseResolvConf(b)
		if err != nil {
			return
		}
		for _, a := range rc.Nameservers {
			if !a.IsValid() || a.Is4In6() {
				t.Fatalf("accepted %v", a)
			}
		}
	})
}

func FuzzParseProcWireless(f *testing.F) {
	f.Add([]byte("Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n wlan0: 0000   54.  -56.  -256        0      0      0      0     38        0\n"))
	f.Add([]byte("h\nh\n wlp2s0: 0000   70.  -40.  -256.  0 0 0 0 0 0\n wlan1: 0000 10. 60. 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		levels, err := ParseProcWireless(b)
		if err != nil {
			return
		}
		for name, l := range levels {
			if l >= 0 || l < -150 {
				t.Fatalf("%s: %d is not a plausible dBm", name, l)
			}
		}
	})
}

func FuzzParseIPAnswer(f *testing.F) {
	f.Add([]byte(`{"ip":"203.0.113.7","port":51234}`))
	f.Add([]byte(`{"ip":"::ffff:100.64.1.2"}`))
	f.Add([]byte(`{"ip":"not an address"}`))
	f.Add([]byte(`<html>captive</html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseIPAnswer(b)
		if err == nil && (!a.IsValid() || a.Is4In6()) {
			t.Fatalf("accepted %v", a)
		}
	})
}

func FuzzParseConfigDoc(f *testing.F) {
	f.Add([]byte(`{"version":1,"urls":{"small_download_url":"https://gw/small","large_download_url":"https://gw/large","upload_url":"https://gw/upload"},"tether_rate_cap_mbps":500}`))
	f.Add([]byte(`{"urls":{"small_https_download_url":"http://a/s","large_https_download_url":"http://a/l","https_upload_url":"http://a/u"}}`))
	f.Add([]byte(`{"urls":{"small_download_url":"ftp://a/s"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, capMbps, err := parseConfigDoc(b)
		if err != nil {
			return
		}
		if u.small == "" || u.large == "" || u.upload == "" || capMbps < 0 {
			t.Fatalf("accepted %+v cap %v", u, capMbps)
		}
	})
}

// FuzzInspectDNSAnswer runs every reading Tether makes of a resolver's
// answer on arbitrary packets.
func FuzzInspectDNSAnswer(f *testing.F) {
	for _, m := range seedAnswers() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m dns.Msg
		if m.Unpack(b) != nil {
			return
		}
		_, _ = classifyNX(&m)
		name := "phishing.test."
		if len(m.Question) > 0 {
			name = m.Question[0].Name
		}
		a := classifyCanary(&m, name)
		if (a.blocked != nil && *a.blocked) != (a.marker != "") {
			t.Fatalf("blocked %v with marker %q", a.blocked, a.marker)
		}
		if a.blocked != nil && *a.blocked && a.resolved() {
			t.Fatal("blocked, yet counted as resolving")
		}
		if a.text == "" || !utf8.ValidString(a.text) || strings.ContainsFunc(a.text, unicode.IsControl) {
			t.Fatalf("answer text %q", a.text)
		}
		if opt := m.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if n, ok := o.(*dns.EDNS0_NSID); ok {
					_ = decodeNSID(n.Nsid)
				}
			}
		}
	})
}

func seedAnswers() []*dns.Msg {
	nx := new(dns.Msg)
	nx.SetQuestion("tether-nx-00.example.com.", dns.TypeA)
	nx.Rcode = dns.RcodeNameError
	hijack := new(dns.Msg)
	hijack.SetQuestion("tether-nx-00.example.com.", dns.TypeA)
	rr, _ := dns.NewRR("tether-nx-00.example.com. 60 IN A 198.18.0.99")
	hijack.Answer = []dns.RR{rr}
	blocked := new(dns.Msg)
	blocked.SetQuestion("phishing.test.", dns.TypeA)
	blocked.Rcode = dns.RcodeNameError
	blocked.SetEdns0(1232, false)
	blocked.IsEdns0().Option = append(blocked.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeBlocked, ExtraText: "phishing"},
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "67772d31"})
	zero := new(dns.Msg)
	zero.SetQuestion("phishing.test.", dns.TypeA)
	z, _ := dns.NewRR("phishing.test. 60 IN A 0.0.0.0")
	zero.Answer = []dns.RR{z}
	zoneNX := new(dns.Msg)
	zoneNX.SetQuestion("phishing.test.", dns.TypeA)
	zoneNX.Rcode = dns.RcodeNameError
	zsoa, _ := dns.NewRR("test. 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60")
	zoneNX.Ns = []dns.RR{zsoa}
	ownNX := zoneNX.Copy()
	osoa, _ := dns.NewRR("phishing.test. 300 IN SOA filter.tether.invalid. hostmaster.tether.invalid. 1 3600 600 86400 300")
	ownNX.Ns = []dns.RR{osoa}
	refused := new(dns.Msg)
	refused.SetQuestion("phishing.test.", dns.TypeA)
	refused.Rcode = dns.RcodeRefused
	refused.SetEdns0(1232, false)
	refused.IsEdns0().Option = append(refused.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeProhibited, ExtraText: "\x1b[2J"})
	return []*dns.Msg{nx, hijack, blocked, zero, zoneNX, ownNX, refused}
}

func FuzzParseDefaultRoutes(f *testing.F) {
	f.Add([]byte("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"))
	f.Add([]byte("usb0 00000000 010A14AC 0003 0 0 600 00000000 0 0 0\nx 00000000 00 1 0 0 -1 00000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range ParseDefaultRoutes(b) {
			if r.Interface == "" || len(r.Interface) > 15 || r.Metric < 0 || (r.Gateway.IsValid() && !r.Gateway.Is4()) {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}

package tunnel

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Config is a WireGuard interface in wg-quick's INI format: one
// [Interface] and any number of [Peer] sections.
//
// ParseConfig followed by Marshal round-trips every field wg-quick and wg
// know, so a stock config can be imported and ours exported for stock
// tools. Comments are not kept.
type Config struct {
	Interface Interface
	Peers     []Peer
}

// Interface is the [Interface] section.
type Interface struct {
	PrivateKey PrivateKey
	ListenPort uint16 // 0: pick one
	FwMark     uint32 // 0: off
	Addresses  []netip.Prefix
	// DNS holds the DNS= entries that are addresses; wg-quick treats the
	// others as search domains.
	DNS           []netip.Addr
	SearchDomains []string
	MTU           int // 0: automatic
	// Table, SaveConfig and the hooks are wg-quick's own keys. Tether
	// keeps them so configs round-trip, and never runs the hooks.
	Table      string
	SaveConfig bool
	PreUp      []string
	PostUp     []string
	PreDown    []string
	PostDown   []string
}

// Peer is a [Peer] section.
type Peer struct {
	PublicKey           PublicKey
	PresharedKey        PresharedKey
	AllowedIPs          []netip.Prefix
	Endpoint            string // host:port, as written; may name a host
	PersistentKeepalive int    // seconds, 0: off
}

// ParseError is a problem on one line of a config.
type ParseError struct {
	File string
	Line int
	Msg  string
	Err  error
}

func (e *ParseError) Error() string {
	file := e.File
	if file == "" {
		file = "config"
	}
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", file, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxConfigBytes bounds what ParseConfig reads: real configs are a few KB,
// and a gateway with thousands of peers stays well under this.
const maxConfigBytes = 8 << 20

// ParseConfig reads a wg-quick config. name labels errors ("wg0.conf:12:
// ..."). Key names are case-insensitive, as in wg(8); '#' starts a comment
// anywhere on a line. Errors never quote a key's value.
func ParseConfig(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, &ParseError{File: name, Msg: "reading: " + err.Error(), Err: err}
	}
	if len(data) > maxConfigBytes {
		return nil, &ParseError{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxConfigBytes)}
	}
	c := &Config{}
	const (
		none = iota
		iface
		peer
	)
	section, seenIface := none, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxConfigBytes)
	line := 0
	fail := func(format string, args ...any) error {
		return &ParseError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	failErr := func(err error, format string, args ...any) error {
		return &ParseError{File: name, Line: line, Msg: fmt.Sprintf(format, args...) + ": " + err.Error(), Err: err}
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") {
			switch strings.ToLower(text) {
			case "[interface]":
				if seenIface {
					return nil, fail("a second [Interface] section")
				}
				section, seenIface = iface, true
			case "[peer]":
				section = peer
				c.Peers = append(c.Peers, Peer{})
			default:
				return nil, fail("unknown section %q: want [Interface] or [Peer]", clip(text))
			}
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fail("want key = value")
		}
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		switch section {
		case none:
			return nil, fail("%q before any [Interface] or [Peer] section", clip(key))
		case iface:
			if err := c.Interface.set(key, value); err != nil {
				return nil, failErr(err, "[Interface] %s", key)
			}
		case peer:
			if err := c.Peers[len(c.Peers)-1].set(key, value); err != nil {
				return nil, failErr(err, "[Peer] %s", key)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fail("reading: %v", err)
	}
	if !seenIface {
		return nil, &ParseError{File: name, Msg: "no [Interface] section"}
	}
	if c.Interface.PrivateKey.IsZero() {
		return nil, &ParseError{File: name, Msg: "[Interface] has no PrivateKey"}
	}
	for i, p := range c.Peers {
		if p.PublicKey.IsZero() {
			return nil, &ParseError{File: name, Msg: fmt.Sprintf("peer %d has no PublicKey", i+1)}
		}
	}
	return c, nil
}

var errUnknownKey = errors.New("unknown key")

func (in *Interface) set(key, value string) error {
	var err error
	switch key {
	case "privatekey":
		in.PrivateKey, err = ParsePrivateKey(value)
	case "listenport":
		var p uint64
		p, err = strconv.ParseUint(value, 10, 16)
		in.ListenPort = uint16(p)
	case "fwmark":
		if value == "off" {
			in.FwMark = 0
			return nil
		}
		var m uint64
		m, err = strconv.ParseUint(value, 0, 32)
		in.FwMark = uint32(m)
	case "address":
		var ps []netip.Prefix
		ps, err = parsePrefixList(value)
		in.Addresses = append(in.Addresses, ps...)
	case "dns":
		for _, f := range splitList(value) {
			if a, perr := netip.ParseAddr(f); perr == nil {
				in.DNS = append(in.DNS, a)
			} else if validDomain(f) {
				in.SearchDomains = append(in.SearchDomains, f)
			} else {
				return fmt.Errorf("%q is neither an address nor a domain", clip(f))
			}
		}
	case "mtu":
		in.MTU, err = strconv.Atoi(value)
		if err == nil && (in.MTU < 576 || in.MTU > 65535) {
			err = fmt.Errorf("%d is outside 576..65535", in.MTU)
		}
	case "table":
		in.Table = value
	case "saveconfig":
		in.SaveConfig, err = strconv.ParseBool(value)
	case "preup":
		in.PreUp = append(in.PreUp, value)
	case "postup":
		in.PostUp = append(in.PostUp, value)
	case "predown":
		in.PreDown = append(in.PreDown, value)
	case "postdown":
		in.PostDown = append(in.PostDown, value)
	default:
		return errUnknownKey
	}
	return err
}

func (p *Peer) set(key, value string) error {
	var err error
	switch key {
	case "publickey":
		p.PublicKey, err = ParsePublicKey(value)
	case "presharedkey":
		p.PresharedKey, err = ParsePresharedKey(value)
	case "allowedips":
		var ps []netip.Prefix
		ps, err = parsePrefixList(value)
		p.AllowedIPs = append(p.AllowedIPs, ps...)
	case "endpoint":
		if _, _, err = SplitEndpoint(value); err == nil {
			p.Endpoint = value
		}
	case "persistentkeepalive":
		if value == "off" {
			p.PersistentKeepalive = 0
			return nil
		}
		var n uint64
		n, err = strconv.ParseUint(value, 10, 16)
		p.PersistentKeepalive = int(n)
	default:
		return errUnknownKey
	}
	return err
}

// SplitEndpoint splits "host:port" or "[v6]:port" and checks the port.
func SplitEndpoint(s string) (host string, port uint16, err error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("endpoint %q: want host:port", clip(s))
	}
	host, ps := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", 0, fmt.Errorf("endpoint %q: unbalanced brackets", clip(s))
		}
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return "", 0, fmt.Errorf("endpoint %q: an IPv6 address needs [brackets]", clip(s))
	}
	p, perr := strconv.ParseUint(ps, 10, 16)
	if perr != nil || p == 0 {
		return "", 0, fmt.Errorf("endpoint %q: bad port", clip(s))
	}
	if host == "" {
		return "", 0, fmt.Errorf("endpoint %q: empty host", clip(s))
	}
	if _, aerr := netip.ParseAddr(host); aerr != nil && !validDomain(host) {
		return "", 0, fmt.Errorf("endpoint %q: bad host", clip(s))
	}
	return host, uint16(p), nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parsePrefixList reads "10.0.0.2/32, fd00::2" style lists; a bare address
// means a host prefix, as in wg-quick.
func parsePrefixList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(s) {
		p, err := parsePrefixOrAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix", clip(s))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address", clip(s))
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// clip keeps error messages short when the input is huge or hostile.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Marshal writes c in wg-quick's format. The output holds the private key:
// write it with WriteConfigFile (mode 0600), never to a log.
func (c *Config) Marshal() []byte {
	var b bytes.Buffer
	in := c.Interface
	b.WriteString("[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", in.PrivateKey.secretBase64())
	if in.ListenPort != 0 {
		fmt.Fprintf(&b, "ListenPort = %d\n", in.ListenPort)
	}
	if in.FwMark != 0 {
		fmt.Fprintf(&b, "FwMark = 0x%x\n", in.FwMark)
	}
	if len(in.Addresses) > 0 {
		fmt.Fprintf(&b, "Address = %s\n", joinPrefixes(in.Addresses))
	}
	if len(in.DNS)+len(in.SearchDomains) > 0 {
		var fs []string
		for _, a := range in.DNS {
			fs = append(fs, a.String())
		}
		fs = append(fs, in.SearchDomains...)
		fmt.Fprintf(&b, "DNS = %s\n", strings.Join(fs, ", "))
	}
	if in.MTU != 0 {
		fmt.Fprintf(&b, "MTU = %d\n", in.MTU)
	}
	if in.Table != "" {
		fmt.Fprintf(&b, "Table = %s\n", in.Table)
	}
	if in.SaveConfig {
		b.WriteString("SaveConfig = true\n")
	}
	for _, h := range []struct {
		k  string
		vs []string
	}{{"PreUp", in.PreUp}, {"PostUp", in.PostUp}, {"PreDown", in.PreDown}, {"PostDown", in.PostDown}} {
		for _, v := range h.vs {
			fmt.Fprintf(&b, "%s = %s\n", h.k, v)
		}
	}
	for _, p := range c.Peers {
		b.WriteString("\n[Peer]\n")
		fmt.Fprintf(&b, "PublicKey = %s\n", p.PublicKey)
		if !p.PresharedKey.IsZero() {
			fmt.Fprintf(&b, "PresharedKey = %s\n", p.PresharedKey.secretBase64())
		}
		if len(p.AllowedIPs) > 0 {
			fmt.Fprintf(&b, "AllowedIPs = %s\n", joinPrefixes(p.AllowedIPs))
		}
		if p.Endpoint != "" {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoint)
		}
		if p.PersistentKeepalive != 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", p.PersistentKeepalive)
		}
	}
	return b.Bytes()
}

func joinPrefixes(ps []netip.Prefix) string {
	fs := make([]string, len(ps))
	for i, p := range ps {
		fs[i] = p.String()
	}
	return strings.Join(fs, ", ")
}

// WriteConfigFile writes c to path atomically with mode 0600.
func WriteConfigFile(path string, c *Config) error {
	return writeFileAtomic(path, c.Marshal(), 0o600)
}

// StripForWG returns the config as `wg setconf` accepts it: without the
// wg-quick-only keys (Address, DNS, MTU, Table, SaveConfig and hooks).
func (c *Config) StripForWG() []byte {
	s := *c
	s.Interface = Interface{PrivateKey: c.Interface.PrivateKey, ListenPort: c.Interface.ListenPort, FwMark: c.Interface.FwMark}
	return s.Marshal()
}

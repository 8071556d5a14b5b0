package netdiag

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// Where the OS keeps its resolvers on Linux and the BSDs.
const (
	// ResolvConfPath is what the C library reads.
	ResolvConfPath = "/etc/resolv.conf"
	// resolvedUplinkPath is systemd-resolved's list of the servers it
	// forwards to, behind its 127.0.0.53 stub.
	resolvedUplinkPath = "/run/systemd/resolve/resolv.conf"
	// resolvedStub is systemd-resolved's stub listener.
	resolvedStub = "127.0.0.53"
	// maxResolvConf bounds what is read: resolv.conf is a few lines.
	maxResolvConf = 64 << 10
)

// ResolvConf is what a resolv.conf file says about DNS.
type ResolvConf struct {
	Nameservers []netip.Addr
	Search      []string
}

// ParseResolvConf reads resolv.conf syntax: "nameserver ADDR" lines
// (IPv6 with an optional %zone), "search" and "domain" lines, comments
// after # or ;. Lines it does not know are skipped, as the C library
// skips them; a nameserver that is not an address is an error naming the
// line, because the C library would silently ignore it and the user
// would never learn why DNS is broken.
func ParseResolvConf(data []byte) (ResolvConf, error) {
	var rc ResolvConf
	if len(data) > maxResolvConf {
		return rc, fmt.Errorf("resolv.conf: %d bytes, more than %d", len(data), maxResolvConf)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxResolvConf)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				return rc, fmt.Errorf("resolv.conf line %d: nameserver without an address", n)
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return rc, fmt.Errorf("resolv.conf line %d: nameserver %q is not an IP address", n, f[1])
			}
			rc.Nameservers = append(rc.Nameservers, a.Unmap())
		case "search", "domain":
			rc.Search = append(rc.Search[:0], f[1:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return rc, fmt.Errorf("resolv.conf: %w", err)
	}
	return rc, nil
}

// systemResolver is a resolver the OS uses, and where we learned of it.
type systemResolver struct {
	addr   netip.AddrPort
	source string // "resolv.conf", "systemd-resolved" or "config"
}

// systemResolvers reads the OS's resolvers from path (resolv.conf). When
// it names only systemd-resolved's stub, the stub is checked (it is what
// applications use) and so are the servers behind it, from resolved's
// own list.
func systemResolvers(path string) ([]systemResolver, error) {
	rc, err := readResolvConf(path)
	if err != nil {
		return nil, err
	}
	var out []systemResolver
	stub := false
	for _, a := range rc.Nameservers {
		out = append(out, systemResolver{netip.AddrPortFrom(a, 53), "resolv.conf"})
		stub = stub || a.String() == resolvedStub
	}
	if stub {
		if up, err := readResolvConf(resolvedUplinkPath); err == nil {
			for _, a := range up.Nameservers {
				out = append(out, systemResolver{netip.AddrPortFrom(a, 53), "systemd-resolved"})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no nameserver", path)
	}
	return out, nil
}

func readResolvConf(path string) (ResolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return ResolvConf{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf+1))
	if err != nil {
		return ResolvConf{}, err
	}
	rc, err := ParseResolvConf(b)
	if err != nil {
		return rc, fmt.Errorf("%s: %w", path, err)
	}
	return rc, nil
}

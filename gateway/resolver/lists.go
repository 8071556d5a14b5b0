package resolver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"unsafe"
)

// Format is a block list's syntax. Each has its own parser.
type Format string

const (
	// FormatHosts: "0.0.0.0 ads.example.com [more names]", as in hosts(5).
	FormatHosts Format = "hosts"
	// FormatDomains: one name per line; "*.name" for subdomains only and
	// "/regex/" for a regular expression.
	FormatDomains Format = "domains"
	// FormatAdblock: Adblock-style DNS rules: "||name^" blocks a name and
	// its subdomains, "@@||name^" is an exception, "/regex/" a regular
	// expression; "$important" raises a rule above the plain rules of the
	// other kind (see Set.Lookup). Cosmetic and URL rules don't apply to
	// DNS and are counted as unsupported.
	FormatAdblock Format = "adblock"
)

// ParseFormat checks a format name from configuration.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatHosts, FormatDomains, FormatAdblock:
		return f, nil
	}
	return "", fmt.Errorf("unknown list format %q (want hosts, domains or adblock)", s)
}

// RuleKind says what a rule matches.
type RuleKind uint8

const (
	// KindDomain matches the name and every subdomain.
	KindDomain RuleKind = iota
	// KindWildcard matches subdomains only ("*.example.com").
	KindWildcard
	// KindRegex matches names against a regular expression.
	KindRegex
)

// Rule is one parsed line. Name is normalized (or a regex source). The
// parser reuses its buffer: Name is valid only during the callback, so a
// consumer that keeps it must copy it (strings.Clone).
type Rule struct {
	Name  string
	Kind  RuleKind
	Allow bool
	// Important: written with $important, which beats the plain rules of
	// the other kind.
	Important bool
	Line      int
}

// String renders the rule in the syntax people know.
func (r Rule) String() string {
	var s string
	switch r.Kind {
	case KindWildcard:
		s = "*." + r.Name
	case KindRegex:
		s = "/" + r.Name + "/"
	default:
		s = "||" + r.Name + "^"
	}
	if r.Allow {
		s = "@@" + s
	}
	if r.Important {
		s += "$important"
	}
	return s
}

// LineError is a rejected line: counted and reported, never fatal.
type LineError struct {
	Source string `json:"source"`
	Line   int    `json:"line"`
	Msg    string `json:"msg"`
}

func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Msg) }

// ParseStats counts what a parse saw.
type ParseStats struct {
	Lines       int         `json:"lines"`
	Rules       int         `json:"rules"`
	Malformed   int         `json:"malformed"`
	Unsupported int         `json:"unsupported"`
	Errors      []LineError `json:"errors,omitempty"` // the first maxReportedErrors
}

const (
	// maxReportedErrors keeps a broken list from flooding logs.
	maxReportedErrors = 20
	// maxLineBytes: longer lines are malformed (no real rule is that long)
	// and are skipped without buffering them.
	maxLineBytes = 4096
	// MaxRegexRules bounds regex rules per resolver: each costs a match
	// per query. RE2 (Go's regexp) is linear-time, so none can blow up.
	MaxRegexRules = 200
	maxRegexLen   = 512
)

func (st *ParseStats) bad(source string, line int, unsupported bool, msg string) {
	if unsupported {
		st.Unsupported++
	} else {
		st.Malformed++
	}
	if len(st.Errors) < maxReportedErrors {
		st.Errors = append(st.Errors, LineError{Source: source, Line: line, Msg: msg})
	}
}

// hostsIgnored are names every hosts file maps to loopback; they are not
// block rules.
var hostsIgnored = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "local": true, "broadcasthost": true,
	"ip6-localhost": true, "ip6-loopback": true, "ip6-localnet": true, "ip6-mcastprefix": true,
	"ip6-allnodes": true, "ip6-allrouters": true, "ip6-allhosts": true, "0.0.0.0": true,
}

// ParseList reads a list in format f and calls emit for each rule. Bad
// lines are counted in the stats and never stop the parse; only a read
// error or an error from emit does.
func ParseList(r io.Reader, f Format, source string, emit func(Rule) error) (ParseStats, error) {
	var st ParseStats
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || (len(raw) > maxLineBytes) {
			st.Lines++
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			st.bad(source, st.Lines, false, fmt.Sprintf("longer than %d bytes", maxLineBytes))
			if err == io.EOF {
				return st, nil
			}
			if err != nil {
				return st, fmt.Errorf("%s: %w", source, err)
			}
			continue
		}
		if len(raw) > 0 {
			st.Lines++
			line := bytes.TrimSpace(raw)
			if len(line) > 0 {
				if perr := parseLine(line, f, source, &st, emit); perr != nil {
					return st, perr
				}
			}
		}
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("%s: %w", source, err)
		}
	}
}

// b2s views a line as a string without copying; see Rule.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func parseLine(line []byte, f Format, source string, st *ParseStats, emit func(Rule) error) error {
	n := st.Lines
	ok := func(r Rule) error {
		r.Line = n
		st.Rules++
		return emit(r)
	}
	switch f {
	case FormatHosts:
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = bytes.TrimSpace(line[:i])
		}
		if len(line) == 0 {
			return nil
		}
		fields := bytes.Fields(line)
		if len(fields) < 2 {
			st.bad(source, n, false, "want an address and at least one name")
			return nil
		}
		if _, err := netip.ParseAddr(b2s(fields[0])); err != nil {
			st.bad(source, n, false, "the first field is not an address")
			return nil
		}
		for _, name := range fields[1:] {
			if hostsIgnored[strings.ToLower(b2s(name))] {
				continue
			}
			norm, err := normalizeName(b2s(name))
			if err != nil {
				st.bad(source, n, false, err.Error())
				continue
			}
			if err := ok(Rule{Name: norm, Kind: KindDomain}); err != nil {
				return err
			}
		}
		return nil
	case FormatDomains:
		if line[0] == '#' || line[0] == '!' {
			return nil
		}
		if i := bytes.Index(line, []byte(" #")); i >= 0 {
			line = bytes.TrimSpace(line[:i])
		}
		return parseNameRule(line, false, false, source, st, ok)
	case FormatAdblock:
		if line[0] == '!' || line[0] == '#' || line[0] == '[' {
			return nil
		}
		allow := false
		if bytes.HasPrefix(line, []byte("@@")) {
			allow, line = true, line[2:]
		}
		if len(line) > 1 && line[0] == '/' && line[len(line)-1] == '/' {
			return parseNameRule(line, allow, false, source, st, ok)
		}
		if bytes.Contains(line, []byte("##")) || bytes.Contains(line, []byte("#@#")) || bytes.Contains(line, []byte("#?#")) {
			st.bad(source, n, true, "cosmetic rule: not a DNS rule")
			return nil
		}
		important := false
		// A regex may hold '$' itself: its modifiers follow its closing
		// slash.
		i := bytes.IndexByte(line, '$')
		if line[0] == '/' {
			i = bytes.LastIndex(line, []byte("/$"))
			if i > 0 {
				i++
			}
		}
		if i >= 0 {
			// Modifiers: "important" raises the rule (see Set.Lookup);
			// "all" and "document" don't change a DNS decision; anything
			// else narrows the rule in ways DNS can't see, so the rule
			// doesn't apply.
			for _, m := range bytes.Split(line[i+1:], []byte(",")) {
				switch s := b2s(m); s {
				case "important":
					important = true
				case "all", "doc", "document":
				default:
					st.bad(source, n, true, "modifier $"+strings.Clone(s)+" does not apply to DNS")
					return nil
				}
			}
			line = line[:i]
			if len(line) > 1 && line[0] == '/' && line[len(line)-1] == '/' {
				return parseNameRule(line, allow, important, source, st, ok)
			}
		}
		if !bytes.HasPrefix(line, []byte("||")) {
			if len(line) > 0 && (line[0] == '|' || bytes.ContainsAny(line, "/*?=&:")) {
				st.bad(source, n, true, "URL rule: not a DNS rule")
				return nil
			}
			// A bare name is a domain rule in AdGuard's DNS syntax.
			return parseNameRule(bytes.TrimSuffix(line, []byte("^")), allow, important, source, st, ok)
		}
		line = line[2:]
		if !bytes.HasSuffix(line, []byte("^")) {
			if bytes.ContainsAny(line, "/*?=&:") {
				st.bad(source, n, true, "URL rule: not a DNS rule")
				return nil
			}
		}
		line = bytes.TrimSuffix(line, []byte("^"))
		if bytes.HasPrefix(line, []byte("*.")) {
			return parseNameRule(line, allow, important, source, st, ok)
		}
		norm, err := normalizeName(b2s(line))
		if err != nil {
			st.bad(source, n, false, err.Error())
			return nil
		}
		return ok(Rule{Name: norm, Kind: KindDomain, Allow: allow, Important: important})
	}
	return fmt.Errorf("unknown list format %q", f)
}

// parseNameRule handles "name", "*.name" and "/regex/".
func parseNameRule(line []byte, allow, important bool, source string, st *ParseStats, ok func(Rule) error) error {
	n := st.Lines
	if len(line) == 0 {
		return nil
	}
	if len(line) > 1 && line[0] == '/' && line[len(line)-1] == '/' {
		src := b2s(line[1 : len(line)-1])
		if len(src) == 0 || len(src) > maxRegexLen {
			st.bad(source, n, false, fmt.Sprintf("a regex must be 1..%d characters", maxRegexLen))
			return nil
		}
		if _, err := regexp.Compile(src); err != nil {
			st.bad(source, n, false, "invalid regex: "+err.Error())
			return nil
		}
		return ok(Rule{Name: src, Kind: KindRegex, Allow: allow, Important: important})
	}
	kind := KindDomain
	if bytes.HasPrefix(line, []byte("*.")) {
		kind, line = KindWildcard, line[2:]
	}
	if bytes.IndexByte(line, ' ') >= 0 || bytes.IndexByte(line, '\t') >= 0 {
		st.bad(source, n, false, "more than one field (is this a hosts file?)")
		return nil
	}
	norm, err := normalizeName(b2s(line))
	if err != nil {
		st.bad(source, n, false, err.Error())
		return nil
	}
	return ok(Rule{Name: norm, Kind: kind, Allow: allow, Important: important})
}

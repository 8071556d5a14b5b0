package resolver

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// The block set stores no names. Each rule is a 64-bit keyed hash of its
// name (hash/maphash with a seed per set) plus 32 bits of metadata, in an
// open-addressing table at most 70% full: 12 bytes a slot, about 17 bytes
// a rule, against about 100 for a map[string]struct{}. A query checks the
// hash of each of its suffixes, so a rule for a name covers its
// subdomains. With 64-bit hashes the chance that any of a query's suffixes
// collides with one of 1M rules is about 1M*5/2^64, 3e-13: negligible, and
// the seed keeps it from being engineered.
const maxLoad = 0.70

// meta packs what explain needs: kind (2 bits), list index (8 bits) and
// line number (22 bits; 0 past 4M lines).
type meta uint32

const maxLists = 255

func packMeta(kind RuleKind, list, line int) meta {
	if line >= 1<<22 {
		line = 0
	}
	return meta(uint32(kind)&3 | uint32(list)<<2 | uint32(line)<<10)
}

func (m meta) kind() RuleKind { return RuleKind(m & 3) }
func (m meta) list() int      { return int(m>>2) & 0xff }
func (m meta) line() int      { return int(m >> 10) }

type table struct {
	keys  []uint64 // 0 means empty
	metas []meta
	n     int
}

// errTableFull: a list grew between the counting and filling passes.
var errTableFull = errors.New("the list grew while it was loading; the rest is skipped until the next reload")

func newTable(capacity int) table {
	size := int(float64(capacity)/maxLoad) + 1
	size = max(size, 8)
	return table{keys: make([]uint64, size), metas: make([]meta, size)}
}

func (t *table) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(t.keys)))
	return int(hi)
}

// insert adds h; a domain rule replaces a wildcard for the same name
// (it covers more), otherwise the first rule seen stays.
func (t *table) insert(h uint64, m meta) error {
	if h == 0 {
		h = 1
	}
	if float64(t.n+1) > float64(len(t.keys))*0.95 {
		return errTableFull
	}
	for i := t.home(h); ; i++ {
		if i == len(t.keys) {
			i = 0
		}
		switch t.keys[i] {
		case 0:
			t.keys[i], t.metas[i] = h, m
			t.n++
			return nil
		case h:
			if t.metas[i].kind() == KindWildcard && m.kind() == KindDomain {
				t.metas[i] = m
			}
			return nil
		}
	}
}

func (t *table) lookup(h uint64) (meta, bool) {
	if h == 0 {
		h = 1
	}
	if len(t.keys) == 0 {
		return 0, false
	}
	for i := t.home(h); ; i++ {
		if i == len(t.keys) {
			i = 0
		}
		switch t.keys[i] {
		case 0:
			return 0, false
		case h:
			return t.metas[i], true
		}
	}
}

func (t *table) bytes() int { return len(t.keys)*8 + len(t.metas)*4 }

type regexRule struct {
	re   *regexp.Regexp
	list int
	line int
}

// ListInfo describes one loaded list.
type ListInfo struct {
	Name     string     `json:"name"`
	Category string     `json:"category"`
	Allow    bool       `json:"allow,omitempty"`
	Source   string     `json:"source"`
	Stats    ParseStats `json:"stats"`
	Err      string     `json:"error,omitempty"`
}

// Set is an immutable compiled rule set. Reloads build a new one and swap
// it in, so lookups never lock.
type Set struct {
	// decisions caches the Decision (with its EDE text) for each matched
	// table rule, keyed by the rule's hash, so the hot path builds each
	// rule's strings once; bounded by maxCachedDecisions.
	decisions sync.Map // decisionKey → Decision
	nCached   atomic.Int64

	seed         maphash.Seed
	block, allow table
	regexBlock   []regexRule
	regexAllow   []regexRule
	lists        []ListInfo
}

// Decision is the filter's verdict on a name, with enough to explain it.
type Decision struct {
	Blocked  bool   `json:"blocked"`
	Allowed  bool   `json:"allowed_by_rule"` // an allow rule matched
	List     string `json:"list,omitempty"`
	Category string `json:"category,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Line     int    `json:"line,omitempty"`
	// ede is the Extended DNS Error text for a block, built once per rule.
	ede string
}

var namePool = sync.Pool{New: func() any { return new([256]byte) }}

type decisionKey struct {
	h     uint64
	allow bool
}

// maxCachedDecisions bounds the decision cache; past it, decisions are
// built per query (correct, only slower).
const maxCachedDecisions = 1 << 17

// edeText is the EDE text for a blocked decision.
func (d Decision) edeText() string {
	if d.ede != "" {
		return d.ede
	}
	return explainText(d)
}

// Lookup decides a query name (any case, trailing dot or not). Allow rules
// always win over block rules. It allocates nothing when no rule matches,
// and only the first time a given rule matches (see decisions).
func (s *Set) Lookup(name string) Decision {
	if s == nil {
		return Decision{}
	}
	// A pooled buffer rather than a stack one: regexp keeps a reference
	// to its input in pooled machines, so a stack buffer would escape and
	// cost an allocation per query.
	bp := namePool.Get().(*[256]byte)
	defer namePool.Put(bp)
	buf := bp
	name = strings.TrimSuffix(name, ".")
	if len(name) > len(buf) || len(name) == 0 {
		return Decision{}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	lower := b2s(buf[:len(name)])
	if d, ok := s.match(&s.allow, s.regexAllow, lower, true); ok {
		d.Allowed = true
		return d
	}
	if d, ok := s.match(&s.block, s.regexBlock, lower, false); ok {
		d.Blocked = true
		return d
	}
	return Decision{}
}

func (s *Set) match(t *table, res []regexRule, name string, allow bool) (Decision, bool) {
	if t.n > 0 {
		for i := 0; ; {
			suffix := name[i:]
			h := maphash.String(s.seed, suffix)
			if m, ok := t.lookup(h); ok && (m.kind() == KindDomain || i > 0) {
				k := decisionKey{h, allow}
				if d, ok := s.decisions.Load(k); ok {
					return d.(Decision), true
				}
				// A copy: suffix views the caller's stack buffer, which
				// must not escape (it would cost an allocation per query).
				d := s.decision(m.list(), m.line(), Rule{Name: strings.Clone(suffix), Kind: m.kind(), Allow: allow})
				if !allow {
					d.ede = explainText(d)
				}
				if s.nCached.Add(1) <= maxCachedDecisions {
					s.decisions.Store(k, d)
				}
				return d, true
			}
			j := strings.IndexByte(suffix, '.')
			if j < 0 {
				break
			}
			i += j + 1
		}
	}
	for _, r := range res {
		if r.re.MatchString(name) {
			return s.decision(r.list, r.line, Rule{Name: r.re.String(), Kind: KindRegex, Allow: allow}), true
		}
	}
	return Decision{}, false
}

func (s *Set) decision(list, line int, r Rule) Decision {
	d := Decision{Line: line}
	if list < len(s.lists) {
		d.List, d.Category = s.lists[list].Name, s.lists[list].Category
	}
	d.Rule = r.String()
	return d
}

// Lists reports each list with its parse statistics.
func (s *Set) Lists() []ListInfo {
	if s == nil {
		return nil
	}
	return append([]ListInfo(nil), s.lists...)
}

// Len is the number of distinct block and allow rules, regexes included.
func (s *Set) Len() (block, allow int) {
	if s == nil {
		return 0, 0
	}
	return s.block.n + len(s.regexBlock), s.allow.n + len(s.regexAllow)
}

// TableBytes is the memory the hash tables hold.
func (s *Set) TableBytes() int { return s.block.bytes() + s.allow.bytes() }

// ListSpec is one list to compile.
type ListSpec struct {
	Name     string
	Category string
	Format   Format
	// Allow makes every rule in the list an allow rule (an allowlist).
	Allow bool
	// Source names the list in reports (a path or URL).
	Source string
	// Open returns the list's content; it is called twice (count, then
	// fill), so the content is streamed, never held in memory.
	Open func() (io.ReadCloser, error)
}

// Compile builds a Set from lists. A list that fails to open is reported
// in ListInfo.Err and skipped; bad lines are counted, never fatal.
func Compile(specs []ListSpec) (*Set, error) {
	if len(specs) > maxLists {
		return nil, fmt.Errorf("resolver: %d lists; at most %d", len(specs), maxLists)
	}
	s := &Set{seed: maphash.MakeSeed(), lists: make([]ListInfo, len(specs))}
	// Pass 1: count, so each table is allocated once at its final size.
	var nBlock, nAllow int
	for i, sp := range specs {
		s.lists[i] = ListInfo{Name: sp.Name, Category: sp.Category, Allow: sp.Allow, Source: sp.Source}
		st, err := parseSpec(sp, func(r Rule) error {
			if r.Kind == KindRegex {
				return nil
			}
			if r.Allow || sp.Allow {
				nAllow++
			} else {
				nBlock++
			}
			return nil
		})
		s.lists[i].Stats = st
		if err != nil {
			s.lists[i].Err = err.Error()
		}
	}
	s.block, s.allow = newTable(nBlock), newTable(nAllow)
	if nAllow == 0 {
		s.allow = table{}
	}
	// Pass 2: fill.
	regexes := 0
	for i, sp := range specs {
		if s.lists[i].Err != "" {
			continue
		}
		_, err := parseSpec(sp, func(r Rule) error {
			allow := r.Allow || sp.Allow
			if r.Kind == KindRegex {
				if regexes >= MaxRegexRules {
					return nil
				}
				regexes++
				rr := regexRule{re: regexp.MustCompile(strings.Clone(r.Name)), list: i, line: r.Line}
				if allow {
					s.regexAllow = append(s.regexAllow, rr)
				} else {
					s.regexBlock = append(s.regexBlock, rr)
				}
				return nil
			}
			m := packMeta(r.Kind, i, r.Line)
			h := maphash.String(s.seed, r.Name)
			if allow {
				return s.allow.insert(h, m)
			}
			return s.block.insert(h, m)
		})
		if err != nil {
			// The content changed between passes (a file rewritten
			// mid-load): keep what was read, and say so.
			s.lists[i].Err = err.Error()
		}
	}
	return s, nil
}

func parseSpec(sp ListSpec, emit func(Rule) error) (ParseStats, error) {
	rc, err := sp.Open()
	if err != nil {
		return ParseStats{}, err
	}
	defer rc.Close()
	return ParseList(rc, sp.Format, sp.Source, emit)
}

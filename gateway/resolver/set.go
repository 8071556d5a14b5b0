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

// meta packs what explain needs: kind (1 bit: domain or wildcard; regex
// rules live outside the tables), whether the rule was written
// $important (1 bit), list index (8 bits) and line number (22 bits; 0
// past 4M lines).
type meta uint32

const maxLists = 255

func packMeta(kind RuleKind, important bool, list, line int) meta {
	if line >= 1<<22 {
		line = 0
	}
	m := meta(uint32(kind)&1 | uint32(list)<<2 | uint32(line)<<10)
	if important {
		m |= 2
	}
	return m
}

func (m meta) kind() RuleKind  { return RuleKind(m & 1) }
func (m meta) important() bool { return m&2 != 0 }
func (m meta) list() int       { return int(m>>2) & 0xff }
func (m meta) line() int       { return int(m >> 10) }

// level is a rule's precedence, highest first, as in AdGuard's syntax:
// an $important exception beats every block rule, an $important block
// rule beats plain exceptions, and a plain exception beats plain block
// rules, whatever list each comes from and however specific. A rule of
// an allowlist (ListSpec.Allow) ranks with the $important exceptions:
// the operator's own allowlist always wins. Each level has its own table,
// so importance costs no memory per rule, and a name ruled at two levels
// keeps both rules.
type level uint8

const (
	levelAllowImportant level = iota // @@…$important, and allowlists
	levelBlockImportant              // …$important
	levelAllow                       // @@…
	levelBlock                       // plain block rules
	numLevels
)

func (l level) allow() bool { return l == levelAllowImportant || l == levelAllow }

func levelOf(r Rule, allowList bool) level {
	switch {
	case allowList || r.Allow && r.Important:
		return levelAllowImportant
	case r.Allow:
		return levelAllow
	case r.Important:
		return levelBlockImportant
	}
	return levelBlock
}

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
	re        *regexp.Regexp
	list      int
	line      int
	important bool
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

	seed    maphash.Seed
	tables  [numLevels]table
	regexes [numLevels][]regexRule
	lists   []ListInfo
}

// Decision is the filter's verdict on a name, with enough to explain it:
// the rule that decided, its list and line.
type Decision struct {
	Blocked bool `json:"blocked"`
	Allowed bool `json:"allowed_by_rule"` // an allow rule matched
	// Important: the rule ranks above plain rules of the other kind: it
	// was written $important, or it is in an allowlist.
	Important bool   `json:"important,omitempty"`
	List      string `json:"list,omitempty"`
	Category  string `json:"category,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Line      int    `json:"line,omitempty"`
	// ede is the Extended DNS Error text for a block, built once per rule.
	ede string
}

// lookupScratch is a lookup's working memory, pooled: the lower-cased
// name and its suffix hashes.
type lookupScratch struct {
	name [256]byte
	sf   suffixes
}

var scratchPool = sync.Pool{New: func() any { return new(lookupScratch) }}

type decisionKey struct {
	h     uint64
	level level
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

// Lookup decides a query name (any case, trailing dot or not) by rule
// precedence (see level): the first level with a matching rule decides,
// and within a level the most specific table rule, then the first regex.
// It allocates nothing when no rule matches, and only the first time a
// given rule matches (see decisions).
func (s *Set) Lookup(name string) Decision {
	var d Decision
	s.lookup(name, func(m Decision) bool { d = m; return false })
	return d
}

// matches is every level's deciding rule for name, highest level first:
// the first is Lookup's decision, the rest are what it wins over.
func (s *Set) matches(name string) []Decision {
	var ds []Decision
	s.lookup(name, func(m Decision) bool { ds = append(ds, m); return true })
	return ds
}

// maxLabels bounds the suffixes of a name: 253 characters hold at most
// 127 labels.
const maxLabels = 128

// suffixes are a name's suffix hashes, longest first, computed once per
// lookup and probed in every table.
type suffixes struct {
	n    int
	off  [maxLabels]uint8
	hash [maxLabels]uint64
}

func (sf *suffixes) compute(seed maphash.Seed, name string) {
	if sf.n > 0 {
		return
	}
	for i := 0; sf.n < maxLabels; {
		sf.off[sf.n], sf.hash[sf.n] = uint8(i), maphash.String(seed, name[i:])
		sf.n++
		j := strings.IndexByte(name[i:], '.')
		if j < 0 {
			break
		}
		i += j + 1
	}
}

// lookup calls yield with each level's match, highest first, until yield
// returns false.
func (s *Set) lookup(name string, yield func(Decision) bool) {
	if s == nil {
		return
	}
	// Pooled rather than on the stack: regexp keeps a reference to its
	// input in pooled machines, so a stack buffer would escape and cost an
	// allocation per query.
	sc := scratchPool.Get().(*lookupScratch)
	defer scratchPool.Put(sc)
	buf := &sc.name
	name = strings.TrimSuffix(name, ".")
	if len(name) > len(buf) || len(name) == 0 {
		return
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	lower := b2s(buf[:len(name)])
	sf := &sc.sf
	sf.n = 0
	for lv := range numLevels {
		if d, ok := s.match(lv, lower, sf); ok && !yield(d) {
			return
		}
	}
}

func (s *Set) match(lv level, name string, sf *suffixes) (Decision, bool) {
	if t := &s.tables[lv]; t.n > 0 {
		sf.compute(s.seed, name)
		for i := range sf.n {
			h := sf.hash[i]
			m, ok := t.lookup(h)
			if !ok || m.kind() == KindWildcard && i == 0 {
				continue
			}
			k := decisionKey{h, lv}
			if d, ok := s.decisions.Load(k); ok {
				return d.(Decision), true
			}
			// A copy: name views a pooled buffer that is reused.
			suffix := strings.Clone(name[sf.off[i]:])
			d := s.decision(lv, m.list(), m.line(), Rule{Name: suffix, Kind: m.kind(), Allow: lv.allow(), Important: m.important()})
			if s.nCached.Add(1) <= maxCachedDecisions {
				s.decisions.Store(k, d)
			}
			return d, true
		}
	}
	for _, r := range s.regexes[lv] {
		if r.re.MatchString(name) {
			return s.decision(lv, r.list, r.line, Rule{Name: r.re.String(), Kind: KindRegex, Allow: lv.allow(), Important: r.important}), true
		}
	}
	return Decision{}, false
}

func (s *Set) decision(lv level, list, line int, r Rule) Decision {
	d := Decision{Line: line, Allowed: lv.allow(), Blocked: !lv.allow(), Important: lv == levelAllowImportant || lv == levelBlockImportant}
	if list < len(s.lists) {
		d.List, d.Category = s.lists[list].Name, s.lists[list].Category
	}
	d.Rule = r.String()
	if d.Blocked {
		d.ede = explainText(d)
	}
	return d
}

// Lists reports each list with its parse statistics.
func (s *Set) Lists() []ListInfo {
	if s == nil {
		return nil
	}
	return append([]ListInfo(nil), s.lists...)
}

// allowList reports whether the list named name is an allowlist.
func (s *Set) allowList(name string) bool {
	for _, l := range s.lists {
		if l.Name == name {
			return l.Allow
		}
	}
	return false
}

// Len is the number of distinct block and allow rules, regexes included.
func (s *Set) Len() (block, allow int) {
	if s == nil {
		return 0, 0
	}
	for lv := range numLevels {
		n := s.tables[lv].n + len(s.regexes[lv])
		if lv.allow() {
			allow += n
		} else {
			block += n
		}
	}
	return block, allow
}

// TableBytes is the memory the hash tables hold.
func (s *Set) TableBytes() int {
	n := 0
	for lv := range numLevels {
		n += s.tables[lv].bytes()
	}
	return n
}

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
	var count [numLevels]int
	for i, sp := range specs {
		s.lists[i] = ListInfo{Name: sp.Name, Category: sp.Category, Allow: sp.Allow, Source: sp.Source}
		st, err := parseSpec(sp, func(r Rule) error {
			if r.Kind != KindRegex {
				count[levelOf(r, sp.Allow)]++
			}
			return nil
		})
		s.lists[i].Stats = st
		if err != nil {
			s.lists[i].Err = err.Error()
		}
	}
	for lv, n := range count {
		if n > 0 {
			s.tables[lv] = newTable(n)
		}
	}
	// Pass 2: fill.
	regexes := 0
	for i, sp := range specs {
		if s.lists[i].Err != "" {
			continue
		}
		_, err := parseSpec(sp, func(r Rule) error {
			lv := levelOf(r, sp.Allow)
			if r.Kind == KindRegex {
				if regexes >= MaxRegexRules {
					return nil
				}
				regexes++
				rr := regexRule{re: regexp.MustCompile(strings.Clone(r.Name)), list: i, line: r.Line, important: r.Important}
				s.regexes[lv] = append(s.regexes[lv], rr)
				return nil
			}
			return s.tables[lv].insert(maphash.String(s.seed, r.Name), packMeta(r.Kind, r.Important, i, r.Line))
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

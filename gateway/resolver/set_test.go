package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func strList(name, category string, f Format, allow bool, content string) ListSpec {
	return ListSpec{Name: name, Category: category, Format: f, Allow: allow, Source: name + ".txt",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
}

func collect(t *testing.T, f Format, content string) ([]string, ParseStats) {
	t.Helper()
	var got []string
	st, err := ParseList(strings.NewReader(content), f, "x", func(r Rule) error {
		got = append(got, r.String())
		return nil
	})
	require.NoError(t, err)
	return got, st
}

func TestParseFormats(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         Format
		in        string
		want      []string
		malformed int
		unsupp    int
	}{
		{"hosts", FormatHosts, "# comment\r\n0.0.0.0 Ads.Example.COM tracker.example\r\n127.0.0.1 localhost\n::1 ip6-localhost\n\n0.0.0.0 bücher.example # trailing\n",
			[]string{"||ads.example.com^", "||tracker.example^", "||xn--bcher-kva.example^"}, 0, 0},
		{"hosts bad", FormatHosts, "0.0.0.0\nnot-an-ip bad.example\n0.0.0.0 bad..name\n", nil, 3, 0},
		{"domains", FormatDomains, "phish.example\n*.wild.example\n/^ads[0-9]+\\./\n# c\n! c\nEXAMPLE.org.\n",
			[]string{"||phish.example^", "*.wild.example", "/^ads[0-9]+\\./", "||example.org^"}, 0, 0},
		{"domains bad", FormatDomains, "two words\n/([/\nbad!.example\n", nil, 3, 0},
		{"adblock", FormatAdblock, "[Adblock Plus 2.0]\n! Title\n||malware.example^\n@@||good.malware.example^\n||ads.example^$important\n||*.cdn.example^\nplain.example\n/tracker\\d+/\n@@/^ok\\./\n@@||x.example^$important,document\n/^ad$/$important\n",
			[]string{"||malware.example^", "@@||good.malware.example^", "||ads.example^$important", "*.cdn.example", "||plain.example^", "/tracker\\d+/", "@@/^ok\\./", "@@||x.example^$important", "/^ad$/$important"}, 0, 0},
		{"adblock unsupported", FormatAdblock, "example.com##.banner\n||ads.example^$third-party\n|http://x.example/path\n/ads/banner.gif?x=1\n", nil, 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := collect(t, tc.f, tc.in)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.malformed, st.Malformed, "%+v", st.Errors)
			assert.Equal(t, tc.unsupp, st.Unsupported, "%+v", st.Errors)
			for _, e := range st.Errors {
				assert.Equal(t, "x", e.Source)
				assert.Positive(t, e.Line)
			}
		})
	}
}

func TestParseLongLineIsCountedNotFatal(t *testing.T) {
	in := "a.example\n" + strings.Repeat("x", 200_000) + "\nb.example\n"
	got, st := collect(t, FormatDomains, in)
	assert.Equal(t, []string{"||a.example^", "||b.example^"}, got)
	assert.Equal(t, 1, st.Malformed)
	assert.Equal(t, 2, st.Errors[0].Line)
}

func TestDecisions(t *testing.T) {
	s, err := Compile([]ListSpec{
		strList("phish", "phishing", FormatDomains, false, "phish.example\n*.wild.example\n/^ads[0-9]+\\./\n"),
		strList("malware", "malware", FormatAdblock, false, "||malware.example^\n@@||clean.malware.example^\n"),
		strList("corp-allow", "allow", FormatDomains, true, "ok.phish.example\n"),
	})
	require.NoError(t, err)
	for _, tc := range []struct {
		q       string
		blocked bool
		rule    string
		list    string
		line    int
	}{
		{"phish.example.", true, "||phish.example^", "phish", 1},
		{"PHISH.Example", true, "||phish.example^", "phish", 1},
		{"deep.sub.phish.example.", true, "||phish.example^", "phish", 1},
		{"notphish.example.", false, "", "", 0},
		{"example.", false, "", "", 0},
		{"wild.example.", false, "", "", 0},
		{"a.wild.example.", true, "*.wild.example", "phish", 2},
		{"ads42.tracker.example.", true, "/^ads[0-9]+\\./", "phish", 3},
		{"malware.example.", true, "||malware.example^", "malware", 1},
		{"clean.malware.example.", false, "@@||clean.malware.example^", "malware", 2},
		{"x.clean.malware.example.", false, "@@||clean.malware.example^", "malware", 2},
		{"ok.phish.example.", false, "@@||ok.phish.example^", "corp-allow", 1},
	} {
		d := s.Lookup(tc.q)
		assert.Equal(t, tc.blocked, d.Blocked, tc.q)
		assert.Equal(t, tc.rule, d.Rule, tc.q)
		assert.Equal(t, tc.list, d.List, tc.q)
		assert.Equal(t, tc.line, d.Line, tc.q)
	}
	block, allow := s.Len()
	assert.Equal(t, 4, block)
	assert.Equal(t, 2, allow)
}

func TestCompileReportsBrokenListsAndKeepsOthers(t *testing.T) {
	bad := ListSpec{Name: "gone", Category: "ads", Format: FormatDomains, Source: "/nonexistent",
		Open: func() (io.ReadCloser, error) { return nil, errors.New("no such file") }}
	s, err := Compile([]ListSpec{bad, strList("ok", "ads", FormatDomains, false, "ads.example\n")})
	require.NoError(t, err)
	assert.True(t, s.Lookup("ads.example").Blocked)
	assert.Equal(t, "no such file", s.Lists()[0].Err)
}

// synthList writes n distinct random-looking domains, one per line.
func synthList(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "block.txt")
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "host%d-%x.blocked%d.example\n", i, uint32(i)*2654435761, i%1000)
	}
	require.NoError(tb, os.WriteFile(path, b.Bytes(), 0o644))
	return path
}

func fileSpec(path string) ListSpec {
	return ListSpec{Name: "synthetic", Category: "malware", Format: FormatDomains, Source: path,
		Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// BenchmarkCompile1M loads a 1M-domain list and reports load time and the
// heap it keeps per entry.
func BenchmarkCompile1M(b *testing.B) {
	const n = 1_000_000
	path := synthList(b, n)
	var perEntry, loadMS float64
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		s, err := Compile([]ListSpec{fileSpec(path)})
		require.NoError(b, err)
		loadMS += float64(time.Since(start).Milliseconds())
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry += float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
		blocked, _ := s.Len()
		require.Equal(b, n, blocked)
	}
	b.ReportMetric(perEntry/float64(b.N), "B/entry")
	b.ReportMetric(loadMS/float64(b.N), "load-ms")
}

// BenchmarkLookup is one blocking decision against the 1M set: half the
// names blocked (subdomains of rules), half not.
func BenchmarkLookup(b *testing.B) {
	const n = 1_000_000
	s, err := Compile([]ListSpec{fileSpec(synthList(b, n))})
	require.NoError(b, err)
	qs := make([]string, 1024)
	for i := range qs {
		if i%2 == 0 {
			qs[i] = fmt.Sprintf("www.host%d-%x.blocked%d.example.", i*7, uint32(i*7)*2654435761, (i*7)%1000)
		} else {
			qs[i] = fmt.Sprintf("www.allowed%d.example.org.", i)
		}
	}
	b.ResetTimer()
	blocked := 0
	for i := range b.N {
		if s.Lookup(qs[i&1023]).Blocked {
			blocked++
		}
	}
	b.StopTimer()
	require.InDelta(b, b.N/2, blocked, float64(b.N)/100+2)
}

// TestImportantPrecedence: rules decide by precedence, highest first:
// @@…$important (and allowlists), …$important, @@…, plain block rules;
// across lists, and whichever of parent and child each rule names (issue
// 13 case 10: an exception beat $important). The decision names the
// rule, list and line that decided, and Explain says what it beat.
func TestImportantPrecedence(t *testing.T) {
	type list struct{ name, content string }
	for _, tc := range []struct {
		name    string
		lists   []list
		allow   string // an allowlist, in domains format
		q       string
		blocked bool
		rule    string
		list    string
		line    int
		explain string
	}{
		{"a block rule", []list{{"a", "||x.test^"}}, "", "x.test", true, "||x.test^", "a", 1,
			"blocked (phishing): rule ||x.test^ in list a, line 1"},
		{"an exception beats a block rule", []list{{"a", "||x.test^\n@@||x.test^"}}, "", "x.test", false, "@@||x.test^", "a", 2,
			"allowed: exception @@||x.test^ in list a (line 2) wins over the block rule ||x.test^ in list a (line 1)"},
		{"$important beats an exception", []list{{"a", "||x.test^$important\n@@||x.test^"}}, "", "x.test", true, "||x.test^$important", "a", 1,
			"$important rule ||x.test^$important in list a (line 1) wins over the exception @@||x.test^ in list a (line 2)"},
		{"in either order", []list{{"a", "@@||x.test^\n||x.test^$important"}}, "", "x.test", true, "||x.test^$important", "a", 2,
			"wins over the exception @@||x.test^ in list a (line 1)"},
		{"an $important exception beats $important", []list{{"a", "||x.test^$important\n@@||x.test^$important"}}, "", "x.test", false, "@@||x.test^$important", "a", 2,
			"wins over the block rule ||x.test^$important in list a (line 1); an $important exception wins over every block rule"},
		{"an $important exception beats a block rule", []list{{"a", "||x.test^\n@@||x.test^$important"}}, "", "x.test", false, "@@||x.test^$important", "a", 2,
			"an $important exception wins over every block rule"},
		{"$important across lists", []list{{"ex", "@@||x.test^"}, {"a", "||x.test^$important"}}, "", "x.test", true, "||x.test^$important", "a", 1,
			"wins over the exception @@||x.test^ in list ex (line 1)"},
		{"an $important exception across lists", []list{{"a", "||x.test^$important"}, {"ex", "@@||x.test^$important"}}, "", "x.test", false, "@@||x.test^$important", "ex", 1,
			"wins over the block rule ||x.test^$important in list a (line 1)"},
		{"$important on the parent beats an exception on the child", []list{{"a", "||x.test^$important\n@@||a.x.test^"}}, "", "a.x.test", true, "||x.test^$important", "a", 1,
			"wins over the exception @@||a.x.test^ in list a (line 2)"},
		{"$important on the child beats an exception on the parent", []list{{"a", "@@||x.test^\n||a.x.test^$important"}}, "", "b.a.x.test", true, "||a.x.test^$important", "a", 2,
			"wins over the exception @@||x.test^ in list a (line 1)"},
		{"the parent's exception still covers the child's siblings", []list{{"a", "@@||x.test^\n||a.x.test^$important\n||x.test^"}}, "", "b.x.test", false, "@@||x.test^", "a", 1,
			"exceptions win over block rules that are not $important"},
		{"an $important exception on the parent beats $important on the child", []list{{"a", "@@||x.test^$important\n||a.x.test^$important"}}, "", "a.x.test", false, "@@||x.test^$important", "a", 1,
			"wins over the block rule ||a.x.test^$important in list a (line 2)"},
		{"an exception on the child beats a plain rule on the parent", []list{{"a", "||x.test^\n@@||a.x.test^"}}, "", "a.x.test", false, "@@||a.x.test^", "a", 2, ""},
		{"the same name plain and $important in one list", []list{{"a", "||x.test^\n||x.test^$important\n@@||x.test^"}}, "", "x.test", true, "||x.test^$important", "a", 2, ""},
		{"an $important wildcard beats an exception", []list{{"a", "||*.x.test^$important\n@@||a.x.test^"}}, "", "a.x.test", true, "*.x.test$important", "a", 1, ""},
		{"an $important wildcard does not match its parent", []list{{"a", "||*.x.test^$important\n@@||a.x.test^"}}, "", "x.test", false, "", "", 0, "no rule"},
		{"an $important regex beats an exception", []list{{"a", "/^ads[0-9]*\\./$important\n@@||ads1.x.test^"}}, "", "ads1.x.test", true, "/^ads[0-9]*\\./$important", "a", 1, ""},
		{"an allowlist beats $important", []list{{"a", "||x.test^$important"}}, "x.test\n", "x.test", false, "@@||x.test^", "corp-allow", 1,
			"an allowlist's rules win over every block rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			for _, l := range tc.lists {
				cfg.Lists = append(cfg.Lists, ListConfig{Name: l.name, Category: "phishing", Format: "adblock", Path: writeList(t, l.content)})
			}
			if tc.allow != "" {
				cfg.Lists = append(cfg.Lists, ListConfig{Name: "corp-allow", Format: "domains", Allow: true, Path: writeList(t, tc.allow)})
			}
			r, err := New(context.Background(), cfg, Options{})
			require.NoError(t, err)
			set := r.filter.set.Load()
			for _, q := range []string{tc.q, strings.ToUpper(tc.q) + "."} {
				d := set.Lookup(q)
				assert.Equal(t, tc.blocked, d.Blocked, q)
				assert.Equal(t, !tc.blocked && tc.rule != "", d.Allowed, q)
				assert.Equal(t, tc.rule, d.Rule, q)
				assert.Equal(t, tc.list, d.List, q)
				assert.Equal(t, tc.line, d.Line, q)
			}
			ex, err := r.Explain(tc.q)
			require.NoError(t, err)
			assert.Equal(t, set.Lookup(tc.q), ex.Decision, "Explain and Lookup agree")
			assert.Contains(t, ex.Summary, tc.explain)
			for _, o := range ex.Overrides {
				assert.NotEqual(t, ex.Decision.Blocked, o.Blocked, "an override has the other verdict")
			}
		})
	}
}

// TestImportantOverTheWire: the precedence holds where it matters, in the
// answers, on both paths, with the deciding rule in the EDE.
func TestImportantOverTheWire(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast path %v", fast), func(t *testing.T) {
			tr := newTestResolver(t, Config{DisableFastPath: !fast, Lists: []ListConfig{
				{Name: "exceptions", Category: "ads", Format: "adblock", Path: writeList(t, "@@||x.test^\n@@||y.test^\n")},
				{Name: "phish", Category: "phishing", Format: "adblock", Path: writeList(t, "||x.test^$important\n||y.test^\n")},
			}, LocalZones: []LocalZone{{Name: "y.test", Records: []string{"@ IN A 10.0.0.9"}}}})
			resp := tr.ask(t, "login.x.test", dns.TypeA, true)
			assert.Equal(t, dns.RcodeNameError, resp.Rcode, "$important beats the exception")
			require.NotNil(t, ede(resp))
			assert.Contains(t, ede(resp).ExtraText, "rule ||x.test^$important, line 1")
			resp = tr.ask(t, "y.test", dns.TypeA, true)
			require.Len(t, resp.Answer, 1, "a plain block rule still loses to the exception")
		})
	}
}

// TestLookupAllocs: Lookup allocates nothing, once each matching rule's
// decision is cached, whatever level decides.
func TestLookupAllocs(t *testing.T) {
	s, err := Compile([]ListSpec{strList("a", "ads", FormatAdblock, false, "||x.test^\n||y.test^$important\n@@||z.test^\n@@||w.test^$important\n")})
	require.NoError(t, err)
	for _, name := range []string{"www.nothing.example.org.", "a.x.test.", "a.y.test", "q.z.test", "w.test"} {
		s.Lookup(name)
		assert.Zero(t, testing.AllocsPerRun(100, func() { s.Lookup(name) }), name)
	}
}

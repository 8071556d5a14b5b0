package archtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rule is one row of a table in ARCHITECTURE.md: packages matching from
// may import packages matching one of to.
type rule struct {
	from string
	to   []string
}

// matches reports whether the module-relative path p matches pattern:
// "*" is any package, "x/..." is x and everything under it, anything
// else is exactly that package.
func matches(pattern, p string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// specificity orders patterns: an exact path beats "x/...", a longer
// base beats a shorter one, and "*" comes last.
func specificity(pattern string) int {
	switch {
	case pattern == "*":
		return 0
	case strings.HasSuffix(pattern, "/..."):
		return 2 * len(pattern)
	}
	return 2*len(pattern) + 1
}

// ruleFor is the most specific rule naming p, or false.
func ruleFor(rules []rule, p string) (rule, bool) {
	best, found := rule{}, false
	for _, r := range rules {
		if matches(r.from, p) && (!found || specificity(r.from) > specificity(best.from)) {
			best, found = r, true
		}
	}
	return best, found
}

// allowed reports whether from may import to under rules: the most
// specific rule for from lists a pattern to matches. internal/netlab is
// never reached through an "internal/..." pattern: only tests reach the
// lab, through the test table.
func allowed(rules []rule, from, to string) bool {
	r, ok := ruleFor(rules, from)
	if !ok {
		return false
	}
	for _, p := range r.to {
		if p == "internal/..." && matches("internal/netlab/...", to) && !matches("internal/netlab/...", from) {
			continue
		}
		if matches(p, to) {
			return true
		}
	}
	return false
}

// testAllowed reports whether a test of from may import to: what the
// package may import, or what a test-table row for it (every matching
// row, not only the most specific) adds.
func testAllowed(rules, tests []rule, from, to string) bool {
	if allowed(rules, from, to) {
		return true
	}
	for _, r := range tests {
		if !matches(r.from, from) {
			continue
		}
		for _, p := range r.to {
			if matches(p, to) {
				return true
			}
		}
	}
	return false
}

// readTable parses the markdown table between <!-- name --> and
// <!-- /name --> in doc: the first column's patterns, the second's list.
func readTable(doc, name string) ([]rule, error) {
	start, end := "<!-- "+name+" -->", "<!-- /"+name+" -->"
	i, j := strings.Index(doc, start), strings.Index(doc, end)
	if i < 0 || j < i {
		return nil, fmt.Errorf("ARCHITECTURE.md has no %s table", name)
	}
	var rules []rule
	sc := bufio.NewScanner(strings.NewReader(doc[i+len(start) : j]))
	for n := 0; sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		n++
		if n <= 2 { // the header and its rule
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			return nil, fmt.Errorf("%s table: row %q has no second column", name, line)
		}
		r := rule{from: strings.Trim(strings.TrimSpace(cells[0]), "`")}
		for _, p := range strings.Split(cells[1], ",") {
			if p = strings.Trim(strings.TrimSpace(p), "`"); p != "" {
				r.to = append(r.to, p)
			}
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("the %s table is empty", name)
	}
	return rules, nil
}

// pkg is what go list says of one package.
type pkg struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func goList(t *testing.T, root string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func listPackages(t *testing.T, root string) []pkg {
	t.Helper()
	out := goList(t, root, "-e", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

const module = "github.com/tetherwfh/tether"

func rel(p string) (string, bool) {
	if p == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(p, module+"/")
	return r, ok
}

func loadRules(t *testing.T, root string) (rules, tests, modules []rule) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, x := range []struct {
		name string
		dst  *[]rule
	}{{"arrows", &rules}, {"test-arrows", &tests}, {"module-rules", &modules}} {
		if *x.dst, err = readTable(doc, x.name); err != nil {
			t.Fatal(err)
		}
	}
	return rules, tests, modules
}

// violations lists the imports of pkgs outside the rules.
func violations(pkgs []pkg, rules, tests, modules []rule) []string {
	var bad []string
	check := func(from, imp string, test bool) {
		if to, ok := rel(imp); ok {
			ok := allowed(rules, from, to)
			if test {
				ok = testAllowed(rules, tests, from, to)
			}
			if !ok {
				kind := " imports"
				if test {
					kind = "'s tests import"
				}
				bad = append(bad, fmt.Sprintf("%s%s %s", from, kind, to))
			}
			return
		}
		for _, m := range modules {
			if matches(m.from, imp) && !slices.ContainsFunc(m.to, func(p string) bool { return matches(p, from) }) {
				bad = append(bad, fmt.Sprintf("%s imports %s, which only %s may", from, imp, strings.Join(m.to, ", ")))
			}
		}
	}
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		if _, ok := ruleFor(rules, from); !ok {
			bad = append(bad, fmt.Sprintf("%s is in no row of ARCHITECTURE.md", from))
			continue
		}
		for _, imp := range p.Imports {
			check(from, imp, false)
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			if imp == p.ImportPath {
				continue // an external test package imports its own package
			}
			check(from, imp, true)
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

// TestArchitecture fails on any import between Tether's packages that
// ARCHITECTURE.md does not allow.
func TestArchitecture(t *testing.T) {
	root := moduleRoot(t)
	rules, tests, modules := loadRules(t, root)
	pkgs := listPackages(t, root)
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, v := range violations(pkgs, rules, tests, modules) {
		t.Errorf("%s: not allowed by ARCHITECTURE.md", v)
	}
}

// TestArchitectureCatchesForbiddenImports holds the checker itself to
// what it promises, on made-up packages.
func TestArchitectureCatchesForbiddenImports(t *testing.T) {
	root := moduleRoot(t)
	rules, tests, modules := loadRules(t, root)
	m := func(p string) string { return module + "/" + p }
	for _, tc := range []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: m("tunnel"), Imports: []string{m("netdiag")}}, "tunnel imports netdiag"},
		{pkg{ImportPath: m("netdiag/stamp"), Imports: []string{m("tunnel")}}, "netdiag/stamp imports tunnel"},
		{pkg{ImportPath: m("ui"), Imports: []string{m("client")}}, "ui imports client"},
		{pkg{ImportPath: m("client/localapi"), Imports: []string{m("client")}}, "client/localapi imports client"},
		{pkg{ImportPath: m("gateway"), Imports: []string{m("client/localapi")}}, "gateway imports client/localapi"},
		{pkg{ImportPath: m("client/cli"), Imports: []string{m("gateway")}}, "client/cli imports gateway"},
		{pkg{ImportPath: m("netdiag"), Imports: []string{m("internal/netlab")}}, "netdiag imports internal/netlab"},
		{pkg{ImportPath: m("internal/netlab"), Imports: []string{m("netdiag/measureserver")}}, "internal/netlab imports netdiag/measureserver"},
		{pkg{ImportPath: m("tunnel"), TestImports: []string{m("gateway")}}, "tunnel's tests import gateway"},
		{pkg{ImportPath: m("netdiag"), Imports: []string{"fyne.io/fyne/v2"}}, "netdiag imports fyne.io/fyne/v2"},
		{pkg{ImportPath: m("brandnew")}, "brandnew is in no row"},
	} {
		got := violations([]pkg{tc.p}, rules, tests, modules)
		if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%+v: violations %q, want one starting %q", tc.p, got, tc.want)
		}
	}
	for _, ok := range []pkg{
		{ImportPath: m("cmd/tether"), Imports: []string{m("gateway"), m("client")}},
		{ImportPath: m("netdiag"), TestImports: []string{m("internal/netlab"), m("gateway/resolver")}},
		{ImportPath: m("tunnel"), XTestImports: []string{m("tunnel/tunneltest")}},
		{ImportPath: m("ui"), Imports: []string{m("client/localapi"), "fyne.io/fyne/v2"}},
	} {
		if got := violations([]pkg{ok}, rules, tests, modules); len(got) != 0 {
			t.Errorf("%+v is allowed, but: %q", ok, got)
		}
	}
}

// TestBinaryDependencies keeps the binaries' promises: the CLI links no
// gateway and no SQLite or Prometheus, the tray neither the daemon nor
// the tunnel engines, and the tunnel no diagnosis.
func TestBinaryDependencies(t *testing.T) {
	root := moduleRoot(t)
	for _, tc := range []struct {
		pkg    string
		forbid []string
		allow  []string // exceptions to forbid, exact
	}{
		{"./cmd/tether", []string{"modernc.org/sqlite", "github.com/prometheus/client_golang/", module + "/gateway"}, nil},
		{"./cmd/tether-tray", []string{module + "/client", module + "/tunnel"}, []string{module + "/client/localapi"}},
		{"./tunnel", []string{module + "/netdiag"}, nil},
	} {
		deps := strings.Fields(string(goList(t, root, "-deps", tc.pkg)))
		for _, d := range deps {
			if slices.Contains(tc.allow, d) || strings.HasPrefix(d, module+"/gateway/gwapi") && tc.pkg == "./cmd/tether" {
				continue
			}
			for _, f := range tc.forbid {
				if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
					t.Errorf("%s links %s", tc.pkg, d)
				}
			}
		}
		t.Logf("%s: %d packages", tc.pkg, len(deps))
	}
}

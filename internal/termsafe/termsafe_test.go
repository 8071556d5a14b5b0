package termsafe

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice's laptop", "alice's laptop"},
		{"Zoë 👩‍💻", "Zoë 👩‍💻"},
		{"\x1b[2J", `\x1b[2J`},
		{"\x1b]0;owned\x07", `\x1b]0;owned\x07`},
		{"a\r\n9    10.99.0.9  forged", `a\x0d\x0a9    10.99.0.9  forged`},
		{"abc\u202edcba", `abc\u202edcba`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"c1\u009bX", `c1\u009bX`},
		{`back\slash`, `back\\slash`},
	} {
		got := String(tc.in)
		if got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Errorf("String(%q) still holds %U", tc.in, r)
			}
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J", "a\r\nb", "\u202e", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		if !isSafe(strings.ReplaceAll(got, `\`, "")) {
			t.Fatalf("String(%q) = %q is not safe", s, got)
		}
		if isSafe(s) && got != s {
			t.Fatalf("safe text changed: %q -> %q", s, got)
		}
	})
}

// Package termsafe makes text from elsewhere (a label a client chose, a
// name from the network) safe to print on a terminal: nothing in it can
// move the cursor, clear the screen, set a title, end a line or reorder
// what follows.
//
// Boundaries: termsafe imports nothing of the product. Its character rule
// (Unsafe) is also what the gateway's API refuses in labels
// (gwapi.CheckLabel), so what is stored and what is escaped agree.
package termsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every unsafe character (see Unsafe) and
// every byte of invalid UTF-8 written as a Go escape (\x1b, \u202e), so
// it prints on one line exactly as stored. Safe text comes back as is.
func String(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case Unsafe(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case Unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func isSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if Unsafe(r) || r == '\\' {
			return false
		}
	}
	return true
}

// Unsafe reports whether r changes how the text around it is displayed:
// a control character (C0, DEL, C1: terminal escapes, carriage returns,
// newlines), a line or paragraph separator, or a bidirectional control
// (which reorders what a reader sees, as in the "Trojan Source" attacks).
func Unsafe(r rune) bool {
	switch {
	case unicode.IsControl(r), r == utf8.RuneError:
		return true
	case r == '\u2028', r == '\u2029': // line and paragraph separators
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f': // ALM, LRM, RLM
		return true
	case r >= '\u202a' && r <= '\u202e': // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= '\u2066' && r <= '\u2069': // LRI, RLI, FSI, PDI
		return true
	}
	return false
}

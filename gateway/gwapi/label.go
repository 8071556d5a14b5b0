package gwapi

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tetherwfh/tether/internal/termsafe"
)

// MaxLabelLen bounds a peer's or a token's label, in bytes.
const MaxLabelLen = 128

// CheckLabel reports whether s may be stored as a label: valid UTF-8, at
// most MaxLabelLen bytes, and nothing that changes how text around it is
// shown: no control characters (C0, DEL, C1: terminal escapes, carriage
// returns, newlines), no line or paragraph separators, and no
// bidirectional controls (which reorder what a reader sees, as in the
// "Trojan Source" attacks). Labels are shown to admins in terminals and
// web pages, so one that could forge a row is refused at the API.
func CheckLabel(s string) error {
	if len(s) > MaxLabelLen {
		return fmt.Errorf("label: over %d bytes", MaxLabelLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("label: not valid UTF-8")
	}
	for i, r := range s {
		if termsafe.Unsafe(r) {
			return fmt.Errorf("label: character %U at byte %d is a control or formatting character; use plain text", r, i)
		}
	}
	return nil
}

package resolver

import (
	"errors"
	"strings"

	"golang.org/x/net/idna"
)

// normalizeName turns a rule or query name into the form the set stores:
// lower case ASCII, no trailing dot, IDN labels in punycode. It rejects
// names that can't exist in DNS.
func normalizeName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errors.New("empty name")
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		p, err := idna.Lookup.ToASCII(s)
		if err != nil {
			return "", errors.New("not a valid internationalized name")
		}
		s = p
	}
	s = strings.ToLower(s)
	if len(s) > 253 {
		return "", errors.New("longer than 253 characters")
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", errors.New("invalid character in a name")
			}
			continue
		}
		if i == start {
			return "", errors.New("empty label")
		}
		if i-start > 63 {
			return "", errors.New("label longer than 63 characters")
		}
		start = i + 1
	}
	return s, nil
}

package netdiag

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// HashSSID hides an SSID behind a per-installation salt: SHA-256 over
// salt and name, 16 hex digits. Without a salt there is no hash.
func HashSSID(salt []byte, ssid string) string {
	if len(salt) == 0 || ssid == "" {
		return ""
	}
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte{0})
	h.Write([]byte(ssid))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// maxProcWireless bounds /proc/net/wireless: a header and a line per
// wireless interface.
const maxProcWireless = 64 << 10

// ParseProcWireless reads /proc/net/wireless (Linux wireless extensions)
// and returns each interface's signal level in dBm. Levels the driver
// reports in relative units (positive numbers) are left out: they are
// not dBm, and guessing a conversion would be guessing.
func ParseProcWireless(data []byte) (map[string]int, error) {
	if len(data) > maxProcWireless {
		return nil, fmt.Errorf("/proc/net/wireless: %d bytes, more than %d", len(data), maxProcWireless)
	}
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if n <= 2 {
			continue // two header lines
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 3 {
			continue
		}
		level, err := strconv.ParseFloat(strings.TrimSuffix(f[2], "."), 64)
		if err != nil || level >= 0 || level < -150 {
			continue
		}
		out[strings.TrimSpace(name)] = int(level)
	}
	return out, sc.Err()
}

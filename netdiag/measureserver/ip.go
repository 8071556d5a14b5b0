package measureserver

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// ipAnswer is /ip's JSON answer.
type ipAnswer struct {
	IP   string `json:"ip"`
	Port uint16 `json:"port"`
}

// serveIP answers with the peer's address as the connection shows it,
// IPv4-mapped addresses unmapped. It ignores X-Forwarded-For and similar
// headers, which any client can forge. The answer is JSON unless the
// client prefers text/plain, which gets the bare IP and a newline.
func serveIP(w http.ResponseWriter, r *http.Request) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		http.Error(w, "this connection has no IP address to report (is the server behind a Unix socket?)", http.StatusInternalServerError)
		return
	}
	ip := ap.Addr().Unmap().String()
	if prefersText(r.Header.Values("Accept")) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(ip + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ipAnswer{IP: ip, Port: ap.Port()})
}

// prefersText reports whether Accept ranks text/plain above
// application/json (RFC 9110 section 12.5.1: the most specific matching
// range gives each type its q). A tie, including no Accept at all, goes
// to JSON.
func prefersText(accept []string) bool {
	var textQ, jsonQ float64
	textSpec, jsonSpec := -1, -1 // specificity of the range that set the q: 0 */*, 1 type/*, 2 exact
	for _, line := range accept {
		for _, rng := range strings.Split(line, ",") {
			mt, params, err := mime.ParseMediaType(rng)
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			if spec := specificity(mt, "text/plain"); spec > textSpec {
				textQ, textSpec = q, spec
			}
			if spec := specificity(mt, "application/json"); spec > jsonSpec {
				jsonQ, jsonSpec = q, spec
			}
		}
	}
	return textQ > jsonQ
}

// specificity is how closely media range rng matches type typ: 2 exactly,
// 1 by type/*, 0 by */*, -1 not at all.
func specificity(rng, typ string) int {
	switch {
	case rng == typ:
		return 2
	case rng == "*/*":
		return 0
	case strings.HasSuffix(rng, "/*") && strings.HasPrefix(typ, strings.TrimSuffix(rng, "*")):
		return 1
	}
	return -1
}

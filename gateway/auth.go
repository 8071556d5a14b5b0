package gateway

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/tetherwfh/tether/gateway/gwapi"
)

// How the API authenticates its callers, in one place: routes.go names
// which of these guards each route.

// adminAuth wraps admin handlers: the admin token, as a bearer token.
// With no admin token configured, the admin API is off.
func adminAuth(token string, h http.HandlerFunc) http.HandlerFunc {
	return bearerAuth("admin", h, token)
}

// bearerAuth wraps h: the request must carry one of tokens as a bearer
// token, compared in constant time. Empty tokens never match; with none
// set, what h serves is off (404, saying how to turn it on).
func bearerAuth(what string, h http.HandlerFunc, tokens ...string) http.HandlerFunc {
	var set []string
	for _, t := range tokens {
		if t != "" {
			set = append(set, t)
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if len(set) == 0 {
			writeJSON(w, http.StatusNotFound, gwapi.Error{Message: fmt.Sprintf("the %s endpoints are off: set api.%s_token_file", what, what)})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		match := 0
		for _, t := range set {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
		}
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tether-gateway"`)
			writeJSON(w, http.StatusUnauthorized, gwapi.Error{Message: fmt.Sprintf("a valid %s token is required", what)})
			return
		}
		h(w, r)
	}
}

// loopbackOnly wraps h: only callers on the gateway's own host reach it.
// For what answers with the company's lists (dns explain) until the
// admin API's token covers it.
func loopbackOnly(what string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !clientAddr(r).IsLoopback() {
			writeJSON(w, http.StatusForbidden, gwapi.Error{Message: what + " is only available from the gateway host until the admin API lands"})
			return
		}
		h(w, r)
	}
}

// clientAddr is the address a request came from, unmapped; invalid when
// RemoteAddr is not an address (never for a real connection).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

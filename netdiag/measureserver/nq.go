package measureserver

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// nqVersion is the only config document version the draft defines
// ("The content of the "version" field SHALL be "1"").
const nqVersion = 1

// nqDocument is the draft's config document. It omits the optional
// test_endpoint: clients connect to the host in the URLs.
type nqDocument struct {
	Version int    `json:"version"`
	URLs    nqURLs `json:"urls"`
}

// nqURLs carries each URL under the draft's current name and under the
// name from the draft's revision -00, which goresponsiveness, Tether's
// client and the network-quality/server spec still read. The draft
// requires all three URLs to share one host, and they do.
type nqURLs struct {
	Small  string `json:"small_download_url"`
	Large  string `json:"large_download_url"`
	Upload string `json:"upload_url"`

	LegacySmall  string `json:"small_https_download_url"`
	LegacyLarge  string `json:"large_https_download_url"`
	LegacyUpload string `json:"https_upload_url"`
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	base := s.baseFor(r)
	small, large, upload := base.JoinPath(PathSmall).String(), base.JoinPath(PathLarge).String(), base.JoinPath(PathUpload).String()
	doc := nqDocument{Version: nqVersion, URLs: nqURLs{
		Small: small, Large: large, Upload: upload,
		LegacySmall: small, LegacyLarge: large, LegacyUpload: upload,
	}}
	b, err := json.Marshal(doc)
	if err != nil { // cannot happen: only strings and an int
		http.Error(w, "cannot encode the config document", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json") // the draft's media type
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// baseFor returns Config.BaseURL, or else the URL the client used to
// reach us: https if the connection is TLS, and the Host it asked for
// (net/http has checked its syntax). A request without a Host (HTTP/1.0)
// gets the address it connected to.
func (s *Server) baseFor(r *http.Request) *url.URL {
	if s.base != nil {
		return s.base
	}
	u := &url.URL{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if u.Host == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			u.Host = a.String()
		}
	}
	return u
}

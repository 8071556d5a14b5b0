package localapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// maxPlainError bounds the text of a plain error answer that Handler
// turns into an Error: a sentence or two, never a page.
const maxPlainError = 4 << 10

// Handler serves routes as the local API. Every answer carries
// HeaderAPIVersion; a request that names another version is refused with
// CodeAPIVersion (one that names none, such as curl's, is served); and
// every error answer, including an http.ServeMux's 404 and 405 and the
// text of http.Error, goes out as an Error. Routes answer errors with
// WriteError and successes with WriteJSON.
//
// Errors net/http answers before a handler runs (a malformed request,
// headers too large) stay as net/http writes them.
func Handler(routes http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderAPIVersion, apiVersion)
		if v := r.Header.Get(HeaderAPIVersion); v != "" && v != apiVersion {
			WriteError(w, &Error{Status: http.StatusBadRequest, Code: CodeAPIVersion,
				Message: fmt.Sprintf("this tetherd speaks local API version %d, the request version %s: install tether and tetherd of the same release", APIVersion, v)})
			return
		}
		ew := &envelopeWriter{ResponseWriter: w}
		routes.ServeHTTP(ew, r)
		ew.finish()
	})
}

// WriteJSON answers v as JSON with status 200.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// An error here is the client hanging up, or a type of ours that does
	// not marshal, which the tests catch: nothing to answer either way.
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers e as an error: e.Status (500 if not an error
// status), with e as the JSON body.
func WriteError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// envelopeWriter passes a route's answer through, except an error answer
// that is not JSON: it keeps that text and, once the route returns,
// answers it as an Error.
type envelopeWriter struct {
	http.ResponseWriter
	plain  bool // holding back a plain error answer
	status int
	text   bytes.Buffer
}

func (w *envelopeWriter) WriteHeader(status int) {
	if status >= 400 && !isJSON(w.Header().Get("Content-Type")) {
		w.plain, w.status = true, status
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *envelopeWriter) Write(b []byte) (int, error) {
	if !w.plain {
		return w.ResponseWriter.Write(b)
	}
	if room := maxPlainError - w.text.Len(); room > 0 {
		w.text.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

// Unwrap lets http.ResponseController reach the connection (flushing,
// deadlines), as the event stream will.
func (w *envelopeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *envelopeWriter) finish() {
	if !w.plain {
		return
	}
	msg := strings.TrimSpace(w.text.String())
	if msg == "" {
		msg = http.StatusText(w.status)
	}
	WriteError(w.ResponseWriter, &Error{Status: w.status, Code: codeFor(w.status), Message: msg})
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

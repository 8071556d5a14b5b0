package gwapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultTimeout bounds a whole call, answer included, when Config.HTTP is
// nil. An enrollment touches SQLite and the live device and takes
// milliseconds; a peer list of 10,000 peers a fraction of a second. 30 s
// is what the admin CLI always allowed, and stops a gateway that accepts
// and never answers from hanging the caller.
const DefaultTimeout = 30 * time.Second

// Bounds on the gateway's answers, per call: a little over the largest
// answer a real gateway sends, so a wrong server (or a hostile one) cannot
// make a client buffer without end.
const (
	// maxHealthAnswer: a status and a few problems, each a sentence.
	maxHealthAnswer = 64 << 10
	// maxInfoAnswer: a name, a version and two times.
	maxInfoAnswer = 16 << 10
	// maxEnrollmentAnswer: an enrollment is under 4 KiB; the company's
	// prefixes could make it longer.
	maxEnrollmentAnswer = 256 << 10
	// maxTokenAnswer: an id, a secret, a time and a count.
	maxTokenAnswer = 16 << 10
	// maxPeersAnswer: about 300 bytes a peer, so 10,000 peers are 3 MiB.
	maxPeersAnswer = 16 << 20
	// maxRevokedAnswer: one peer and two figures.
	maxRevokedAnswer = 16 << 10
	// maxExplainAnswer: a decision and the rules it overrides.
	maxExplainAnswer = 256 << 10
	// maxErrorAnswer bounds what is read of an answer that is not a
	// success; maxErrorQuote is how much of a body that is not the error
	// envelope an error quotes.
	maxErrorAnswer = 64 << 10
	maxErrorQuote  = 200
)

// ErrNoAdminToken is the error of an admin call on a Client with no
// admin token.
var ErrNoAdminToken = errors.New("this call needs the gateway's admin token (tether-gateway init writes it beside the config, as admin.token)")

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the API's base URL, e.g. https://gw.example.com:8443.
	BaseURL string
	// Pin, when HTTP is nil, is the pin of the only certificate the
	// client trusts (see PinnedTLS), as for a self-signed gateway; empty
	// means the system's roots. Ignored when HTTP is set.
	Pin string
	// HTTP carries every call when set, as is: its transport decides TLS
	// and its Timeout bounds calls. Nil means a client of its own that
	// trusts Pin, bounds each call by DefaultTimeout and follows no
	// redirect (the API never sends one).
	HTTP *http.Client
	// AdminToken is sent as the bearer token of the admin calls
	// (CreateToken, Peers, Revoke); empty means they fail with
	// ErrNoAdminToken before sending anything.
	AdminToken string
}

// Client calls one gateway's HTTP API. Every call takes a context, reads
// at most a bound per call of the answer, and returns the gateway's error
// envelope as a *Error. A Client is immutable: safe for concurrent use.
type Client struct {
	base  string
	hc    *http.Client
	admin string
}

// New checks cfg and returns a client for it.
func New(cfg Config) (*Client, error) {
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("gateway URL %q: want the API's base URL, e.g. https://gw.example.com:8443", cfg.BaseURL)
	}
	hc := cfg.HTTP
	if hc == nil {
		if cfg.Pin != "" && u.Scheme != "https" {
			return nil, fmt.Errorf("gateway URL %q: a certificate pin needs https", cfg.BaseURL)
		}
		tc, err := PinnedTLS(cfg.Pin)
		if err != nil {
			return nil, err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		hc = &http.Client{Timeout: DefaultTimeout, Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{base: base, hc: hc, admin: cfg.AdminToken}, nil
}

// BaseURL is the API's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Health asks whether the gateway's process serves HTTP (PathHealth).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.call(ctx, "health check", http.MethodGet, PathHealth, false, nil, maxHealthAnswer, &h)
	return h, err
}

// Ready asks whether every component of the gateway is up (PathReady).
// A gateway that is not ready answers 503 with its problems: Ready then
// returns them in Health and a *Error with status 503 that lists them.
func (c *Client) Ready(ctx context.Context) (Health, error) {
	var h Health
	err := c.call(ctx, "readiness check", http.MethodGet, PathReady, false, nil, maxHealthAnswer, &h)
	return h, err
}

// Info asks who the gateway is (PathInfo).
func (c *Client) Info(ctx context.Context) (Info, error) {
	var in Info
	err := c.call(ctx, "info", http.MethodGet, PathInfo, false, nil, maxInfoAnswer, &in)
	return in, err
}

// Enroll sends req, a device's public key with an enrollment token, and
// returns what the device needs to connect (gwapi/wgconf turns it into a
// tunnel configuration). A retry with the same key and token gets the
// same enrollment back.
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (Enrollment, error) {
	var en Enrollment
	err := c.call(ctx, "enroll", http.MethodPost, PathEnroll, false, req, maxEnrollmentAnswer, &en)
	return en, err
}

// CreateToken creates an enrollment token (admin). Its secret is in the
// answer only: the gateway keeps its hash.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (TokenCreated, error) {
	var tc TokenCreated
	err := c.call(ctx, "creating a token", http.MethodPost, PathAdminTokens, true, req, maxTokenAnswer, &tc)
	return tc, err
}

// Peers lists every enrolled peer, revoked ones included (admin). Labels
// are the devices' own words: escape them (internal/termsafe) to print.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var ps []PeerInfo
	err := c.call(ctx, "listing peers", http.MethodGet, PathAdminPeers, true, nil, maxPeersAnswer, &ps)
	return ps, err
}

// Revoke removes the peer from the live device, ends its sessions and
// records it (admin); access has ended when it returns.
func (c *Client) Revoke(ctx context.Context, id int64) (Revoked, error) {
	var rv Revoked
	err := c.call(ctx, fmt.Sprintf("revoking peer %d", id), http.MethodPost, RevokePath(id), true, nil, maxRevokedAnswer, &rv)
	return rv, err
}

// ExplainDNS asks the gateway's filtering resolver why it blocks or
// allows name. The gateway answers only callers on its own host.
func (c *Client) ExplainDNS(ctx context.Context, name string) (DNSExplanation, error) {
	var ex DNSExplanation
	err := c.call(ctx, "explaining "+name, http.MethodGet, PathDNSExplain+"?"+url.Values{"name": {name}}.Encode(), false, nil, maxExplainAnswer, &ex)
	return ex, err
}

// call sends in (nil: no body) as JSON, with the admin token when admin,
// and decodes a 200 answer of at most limit bytes into out. Any other
// status is a *Error; for a 503, out is decoded too (PathReady's body).
func (c *Client) call(ctx context.Context, op, method, path string, admin bool, in any, limit int64, out any) error {
	if admin && c.admin == "" {
		return fmt.Errorf("%s: %w", op, ErrNoAdminToken)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if admin {
		req.Header.Set("Authorization", "Bearer "+c.admin)
	}
	resp, err := c.hc.Do(req)
	var untrusted *tls.CertificateVerificationError
	switch {
	case errors.As(err, &untrusted):
		return fmt.Errorf("%s: %s presented a certificate this client does not trust: %w; for a self-signed gateway, pin it (`tether-gateway fingerprint` prints the pin)", op, c.base, err)
	case errors.Is(err, ErrPinMismatch):
		return fmt.Errorf("%s: %w; compare the pin with what `tether-gateway fingerprint` prints on the gateway host", op, err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, err)
	case err != nil:
		return fmt.Errorf("%s: %s did not answer (is the gateway running, and is this its API's address?): %w", op, c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %w", op, readError(resp, out))
	}
	b, err := readAtMost(resp.Body, limit)
	if err != nil {
		return fmt.Errorf("%s: reading the answer of %s: %w", op, c.base, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: the answer of %s is not the gateway API's (is this a Tether gateway?): %w", op, c.base, err)
	}
	return nil
}

// readError reads an answer that is not a success: the error envelope
// when it is one, else the start of the body. A 503's body is decoded
// into out too, for PathReady, whose problems then are the message.
func readError(resp *http.Response, out any) *Error {
	e := &Error{Status: resp.StatusCode}
	b, err := readAtMost(resp.Body, maxErrorAnswer)
	if err != nil {
		e.Message = err.Error()
		return e
	}
	if json.Unmarshal(b, e) == nil && e.Message != "" {
		return e
	}
	if resp.StatusCode == http.StatusServiceUnavailable && json.Unmarshal(b, out) == nil {
		if h, ok := out.(*Health); ok && len(h.Problems) > 0 {
			e.Message = "not ready: " + strings.Join(h.Problems, "; ")
			return e
		}
	}
	quote := strings.ToValidUTF8(string(bytes.TrimSpace(b)), "?")
	if len(quote) > maxErrorQuote {
		cut := maxErrorQuote
		for cut > 0 && !utf8.RuneStart(quote[cut]) {
			cut--
		}
		quote = quote[:cut] + "…"
	}
	if quote == "" {
		quote = "(no error message)"
	}
	e.Message = quote
	return e
}

// readAtMost reads r to its end, failing if it holds over limit bytes.
func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the answer is over %d bytes, more than the gateway API ever sends (is this a Tether gateway?)", limit)
	}
	return b, nil
}

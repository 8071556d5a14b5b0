package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Limits of one local API call.
const (
	// requestTimeout bounds one call; the daemon answers from memory, so
	// anything slower means it is wedged. It is applied per call, not to
	// the HTTP client, so that a stream of events can outlive it.
	requestTimeout = 5 * time.Second
	// maxAnswer bounds an answer's body: a status is a few hundred bytes
	// and a report a few dozen KiB, so more is a daemon gone wrong.
	maxAnswer = 1 << 20
	// maxErrorText bounds the text of an error answer that is not an
	// Error, as quoted in the error returned.
	maxErrorText = 512
)

// Client talks to the daemon over its unix socket. Its methods are safe
// for concurrent use; a Client must not be copied once used.
type Client struct {
	// Socket is the daemon's socket path; empty means DefaultSocket. It
	// is read once, at the first call.
	Socket string

	once   sync.Once
	socket string
	hc     *http.Client
}

// init builds the HTTP client at the first call, from whichever goroutine
// makes it.
func (c *Client) init() {
	c.once.Do(func() {
		c.socket = c.Socket
		if c.socket == "" {
			c.socket = DefaultSocket
		}
		sock := c.socket
		c.hc = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	})
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.get(ctx, PathStatus, &st)
	return st, err
}

// get fetches path into v. The errors: ErrNotRunning (wrapped) when no
// daemon listens, a *VersionError when it speaks another API version, a
// *Error (wrapped) for an error answer, and a wrapped error otherwise.
func (c *Client) get(ctx context.Context, path string, v any) error {
	c.init()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://tetherd"+path, nil)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	req.Header.Set(HeaderAPIVersion, apiVersion)
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
			return fmt.Errorf("%w (no daemon at %s; start it with `tetherd --config FILE`)", ErrNotRunning, c.socket)
		}
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get(HeaderAPIVersion); got != apiVersion {
		return &VersionError{Socket: c.socket, Daemon: got}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	if len(body) > maxAnswer {
		return fmt.Errorf("localapi: %s: the daemon's answer is over %d KiB, more than any answer of the API", path, maxAnswer>>10)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localapi: %s: %w", path, errorOf(resp.StatusCode, body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("localapi: %s: the daemon's answer is not the JSON expected: %w", path, err)
	}
	return nil
}

// errorOf reads an error answer: an Error, or whatever text came instead.
func errorOf(status int, body []byte) *Error {
	var e Error
	if err := json.Unmarshal(body, &e); err == nil && (e.Code != "" || e.Message != "") {
		e.Status = status
		if e.Code == "" {
			e.Code = codeFor(status)
		}
		return &e
	}
	text := strings.TrimSpace(string(body))
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "…"
	}
	if text == "" {
		text = http.StatusText(status)
	}
	return &Error{Status: status, Code: codeFor(status), Message: text}
}

package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
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

// diagnoseTimeout bounds a quick diagnosis call, and fullTimeout a full
// one: a run takes at most 10 s (netdiag's budget), two while connected
// (beside the tunnel and through it), plus the daemon's queue.
const (
	diagnoseTimeout = 30 * time.Second
	fullTimeout     = 60 * time.Second
)

// uplinksTimeout bounds a comparison of uplinks: a full run each, one
// after the other, for a few of them.
const uplinksTimeout = 2 * time.Minute

// enrollTimeout bounds an enrollment: the daemon reaches the gateway over
// HTTPS, which a slow line may take seconds to do.
const enrollTimeout = 30 * time.Second

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, PathStatus, nil, &st, requestTimeout)
	return st, err
}

// upTimeout bounds an up: on a network it knows nothing of, the daemon
// diagnoses it (a full run, 10 s) before deciding.
const upTimeout = 45 * time.Second

// Up brings the tunnel up in mode (auto, full, split; empty: the
// settings') and returns the decision applied. A mode company policy does
// not allow is an *Error with CodeModeNotAllowed.
func (c *Client) Up(ctx context.Context, mode string) (Decision, error) {
	var d Decision
	err := c.do(ctx, http.MethodPost, PathUp, UpRequest{Mode: mode}, &d, upTimeout)
	return d, err
}

// Down takes the tunnel down.
func (c *Client) Down(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPost, PathDown, struct{}{}, &st, requestTimeout)
	return st, err
}

// Enroll enrolls this device with a gateway.
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodPost, PathEnroll, req, &st, enrollTimeout)
	return st, err
}

// Diagnose runs a diagnosis and returns its report; Watch shows its
// progress.
func (c *Client) Diagnose(ctx context.Context, quick bool) (report.Report, error) {
	return c.DiagnoseWith(ctx, DiagnoseRequest{Quick: quick})
}

// DiagnoseWith runs the diagnosis req asks for and returns its report.
func (c *Client) DiagnoseWith(ctx context.Context, req DiagnoseRequest) (report.Report, error) {
	var r report.Report
	timeout := diagnoseTimeout
	switch {
	case req.Uplinks:
		timeout = uplinksTimeout
	case !req.Quick || req.CompareTunnel:
		timeout = fullTimeout
	}
	err := c.do(ctx, http.MethodPost, PathDiagnose, req, &r, timeout)
	return r, err
}

// Reports returns the reports the daemon keeps, newest first.
func (c *Client) Reports(ctx context.Context) ([]report.Report, error) {
	var rs []report.Report
	err := c.do(ctx, http.MethodGet, PathReports, nil, &rs, requestTimeout)
	return rs, err
}

// LatestReport returns the latest report; an *Error with CodeNotFound if
// there is none.
func (c *Client) LatestReport(ctx context.Context) (report.Report, error) {
	var r report.Report
	err := c.do(ctx, http.MethodGet, PathReportLatest, nil, &r, requestTimeout)
	return r, err
}

// Settings returns the employee's settings.
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	var s Settings
	err := c.do(ctx, http.MethodGet, PathSettings, nil, &s, requestTimeout)
	return s, err
}

// SetSettings replaces the settings and returns them as the daemon keeps
// them.
func (c *Client) SetSettings(ctx context.Context, s Settings) (Settings, error) {
	var out Settings
	err := c.do(ctx, http.MethodPut, PathSettings, s, &out, requestTimeout)
	return out, err
}

// Line asks for the line monitor's finding and its samples since d ago
// (0: the daemon's default, an hour).
func (c *Client) Line(ctx context.Context, since time.Duration) (Line, error) {
	var l Line
	path := PathLine
	if since > 0 {
		path += "?since=" + url.QueryEscape(since.String())
	}
	err := c.do(ctx, http.MethodGet, path, nil, &l, requestTimeout)
	return l, err
}

// Snooze holds suggestion id back for d.
func (c *Client) Snooze(ctx context.Context, id report.SuggestionID, d time.Duration) (SnoozeAnswer, error) {
	var a SnoozeAnswer
	err := c.do(ctx, http.MethodPost, PathSnooze, SnoozeRequest{ID: id, For: d.String()}, &a, requestTimeout)
	return a, err
}

// maxEvent bounds one event's line: a report is a few dozen KiB.
const maxEvent = 1 << 20

// Watch streams the daemon's events to fn, the current state first,
// until ctx ends (it then returns ctx's error), fn returns an error (it
// returns that), or the stream breaks. A watcher too slow to keep up is
// dropped by the daemon: Watch then returns an error, and the caller
// watches again.
func (c *Client) Watch(ctx context.Context, fn func(Event) error) error {
	c.init()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://tetherd"+PathEvents, nil)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	req.Header.Set(HeaderAPIVersion, apiVersion)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(PathEvents, err)
	}
	defer resp.Body.Close()
	if err := c.checkAnswer(PathEvents, resp); err != nil {
		return err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEvent)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue // the daemon's keepalive
		}
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("localapi: %s: an event that is not JSON: %w", PathEvents, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("localapi: %s: %w", PathEvents, err)
	}
	return fmt.Errorf("localapi: %s: the daemon ended the stream (a watcher too slow is dropped; watch again)", PathEvents)
}

func (c *Client) transportError(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, errConnRefused) {
		return fmt.Errorf("%w (no daemon at %s; start it with `tetherd --config FILE`)", ErrNotRunning, c.socket)
	}
	return fmt.Errorf("localapi: %s: %w", path, err)
}

// checkAnswer reads an answer's version and, for an error status, its
// error.
func (c *Client) checkAnswer(path string, resp *http.Response) error {
	if got := resp.Header.Get(HeaderAPIVersion); got != apiVersion {
		return &VersionError{Socket: c.socket, Daemon: got}
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return fmt.Errorf("localapi: %s: %w", path, errorOf(resp.StatusCode, body))
}

// do calls path with in as the JSON body (nil: none) and reads the answer
// into out. The errors: ErrNotRunning (wrapped) when no daemon listens, a
// *VersionError when it speaks another API version, an *Error (wrapped)
// for an error answer, and a wrapped error otherwise.
func (c *Client) do(ctx context.Context, method, path string, in, out any, timeout time.Duration) error {
	c.init()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("localapi: %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tetherd"+path, body)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	req.Header.Set(HeaderAPIVersion, apiVersion)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(path, err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get(HeaderAPIVersion); got != apiVersion {
		return &VersionError{Socket: c.socket, Daemon: got}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("localapi: %s: %w", path, err)
	}
	if len(b) > maxAnswer {
		return fmt.Errorf("localapi: %s: the daemon's answer is over %d KiB, more than any answer of the API", path, maxAnswer>>10)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localapi: %s: %w", path, errorOf(resp.StatusCode, b))
	}
	if err := json.Unmarshal(b, out); err != nil {
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

package netdiag

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/tetherwfh/tether/netdiag/report"
)

// pathHealth is the gateway's liveness endpoint (gwapi.PathHealth, which
// netdiag does not import): 200 whenever the process serves HTTP.
const pathHealth = "/healthz"

// serviceTimeout bounds the service check: a TCP and TLS handshake and one
// small GET, a few round trips on any line. 1.5 s, as configTimeout, leaves
// --quick's 2 s room to finish the report.
const serviceTimeout = 1500 * time.Millisecond

// checkService asks the server for /healthz.
func (c *Client) checkService(ctx context.Context) *report.ServiceReport {
	u := c.base.ResolveReference(&url.URL{Path: pathHealth})
	r := &report.ServiceReport{URL: u.Redacted(), Port: c.serverPort()}
	ctx, cancel := context.WithTimeout(ctx, serviceTimeout)
	defer cancel()
	hc := c.plainClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer hc.CloseIdleConnections()
	start := time.Now()
	resp, err := get(ctx, hc, u.String())
	if err != nil {
		r.Error = serviceError(err)
		return r
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	r.RTTMS, r.Status = ms(time.Since(start)), resp.StatusCode
	if resp.StatusCode >= http.StatusInternalServerError {
		r.Error = "it answered " + resp.Status
		return r
	}
	r.Answers = true
	return r
}

// serviceError writes why a request failed in the words a person needs.
func serviceError(err error) string {
	var (
		rh  tls.RecordHeaderError
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ue  *url.Error
		ctx = errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case ctx:
		return fmt.Sprintf("no answer within %v", serviceTimeout)
	case errors.As(err, &rh):
		return "it does not speak TLS"
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn):
		return "its certificate is not trusted: " + err.Error()
	case errors.As(err, &ue):
		return ue.Err.Error() // without the "Get URL:" the report already has
	}
	return err.Error()
}

// serverPort is the server URL's TCP port, explicit or the scheme's.
func (c *Client) serverPort() int {
	if p, err := strconv.Atoi(c.base.Port()); err == nil && p > 0 {
		return p
	}
	if c.base.Scheme == "https" {
		return 443
	}
	return 80
}

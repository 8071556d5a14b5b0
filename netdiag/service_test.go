package netdiag_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/netdiag"
	"github.com/tetherwfh/tether/netdiag/report"
)

// quickOnLoopback runs --quick against server with every check that
// would leave this host off: the router is loopback, no DNS.
func quickOnLoopback(t *testing.T, cfg netdiag.Config) *report.Report {
	t.Helper()
	cfg.Router, cfg.DNS.Off = netip.MustParseAddr("127.0.0.1"), true
	c, err := netdiag.New(cfg)
	require.NoError(t, err)
	return c.Run(context.Background(), report.ModeQuick)
}

func verdict(r *report.Report, id report.VerdictID) *report.Verdict {
	for i := range r.Verdicts {
		if r.Verdicts[i].ID == id {
			return &r.Verdicts[i]
		}
	}
	return nil
}

// TestQuickRunChecksTheGatewaysService: a host that answers pings with
// nothing listening on the service's port is not a gateway that answers.
func TestQuickRunChecksTheGatewaysService(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	rep := quickOnLoopback(t, netdiag.Config{Server: fmt.Sprintf("https://127.0.0.1:%d", port)})
	require.NotNil(t, rep.Service)
	assert.False(t, rep.Service.Answers)
	assert.Equal(t, port, rep.Service.Port)
	assert.Equal(t, "connection refused", rep.Service.Error)
	v := verdict(rep, report.VerdictGatewayUnreachable)
	require.NotNil(t, v, "verdicts %+v", rep.Verdicts)
	assert.Equal(t, report.SeverityCritical, v.Severity)
	assert.True(t, strings.HasPrefix(rep.Summary, "The gateway host answers ("), rep.Summary)
	assert.Contains(t, rep.Summary, fmt.Sprintf("but its service on :%d does not (connection refused)", port))
	assert.NotContains(t, rep.Summary, "Quick check")
}

// TestQuickRunFindsTheServiceUp: a pinned HTTPS gateway answering
// /healthz passes; one whose certificate is not the pinned one does not.
func TestQuickRunFindsTheServiceUp(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, `{"status":"ok"}`)
			return
		}
		http.NotFound(w, r)
	}))
	// The latency probes' bare TCP handshakes end TLS handshakes early.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pinned, err := gwapi.PinnedTLS(gwapi.Fingerprint(srv.Certificate().Raw))
	require.NoError(t, err)
	rep := quickOnLoopback(t, netdiag.Config{Server: srv.URL, TLS: pinned})
	require.NotNil(t, rep.Service)
	assert.True(t, rep.Service.Answers, "%+v", rep.Service)
	assert.Equal(t, http.StatusOK, rep.Service.Status)
	assert.Nil(t, verdict(rep, report.VerdictGatewayUnreachable))
	assert.Contains(t, rep.Summary, "Quick check: the company gateway answers")

	wrong, err := gwapi.PinnedTLS("sha256:" + strings.Repeat("00", 32))
	require.NoError(t, err)
	rep = quickOnLoopback(t, netdiag.Config{Server: srv.URL, TLS: wrong})
	assert.False(t, rep.Service.Answers)
	assert.Contains(t, rep.Service.Error, "pin")
	assert.NotNil(t, verdict(rep, report.VerdictGatewayUnreachable))
}

package report_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/report"
)

func render(t *testing.T, r *report.Report, o report.Options) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, report.Render(&b, r, o))
	return b.String()
}

// TestRenderGolden: the text `tether diag` prints. report.txt.golden was
// written by the CLI's renderer before it moved here.
func TestRenderGolden(t *testing.T) {
	golden(t, "report.txt.golden", []byte(render(t, fixture(), report.Options{})))
	golden(t, "quick.txt.golden", []byte(render(t, quickFixture(), report.Options{})))
}

// TestRenderParts: each section alone, in the fixed order, nested under
// an indent, with nothing left over from the others.
func TestRenderParts(t *testing.T) {
	r := fixture()
	assert.Equal(t, "This line cannot carry a video call right now. (5 more findings below.)\n",
		render(t, r, report.Options{Parts: report.PartHeadline}))
	assert.Equal(t, "  Quick check: the company gateway answers in under 1 ms with no notable loss; run without --quick to test speed and behaviour under load.\n\n"+
		"  latency    address          method      min   median      p90   jitter    loss\n"+
		"  gateway    127.0.0.1        icmp      0.1ms    0.1ms    0.1ms    0.1ms    0.0%\n",
		render(t, quickFixture(), report.Options{Parts: report.PartFigures | report.PartHeadline, Indent: "  "}))
	actions := render(t, r, report.Options{Parts: report.PartActions})
	assert.True(t, strings.HasPrefix(actions, "What to do\n  - Open a browser"), actions)
	assert.Equal(t, 4, strings.Count(actions, "\n"), "the heading and three suggestions")
	assert.Equal(t, "! latency anchor: icmp: no answer to 10 probes\n! upload: upload: stream 1: unexpected EOF\n",
		render(t, r, report.Options{Parts: report.PartErrors}))
	assert.Empty(t, render(t, quickFixture(), report.Options{Parts: report.PartFindings | report.PartActions | report.PartErrors}),
		"sections with nothing to say are left out")
	all := render(t, r, report.Options{})
	assert.Equal(t, all, render(t, r, report.Options{Parts: report.PartAll}))
}

// TestRenderEscapesWhatTheNetworkSays: a resolver's answer, an NSID or a
// redirect is chosen by whoever runs the network; none of it may reach
// the terminal as a control sequence or a line break.
func TestRenderEscapesWhatTheNetworkSays(t *testing.T) {
	r := fixture()
	r.DNS.Resolvers[0].NSID = "evil\x1b]0;pwned\x07"
	r.DNS.Filter.CompanyAnswer = "NOERROR 1.2.3.4\r\nFindings: none"
	r.Path.Captive.RedirectTo = "http://portal/\u202egnp.exe"
	r.Verdicts[1].Evidence = "answered 302\x1b[2J"
	r.Errors[0].Error = "line one\nline two"
	out := render(t, r, report.Options{})
	assert.NotContains(t, out, "\x1b")
	assert.NotContains(t, out, "\x07")
	assert.NotContains(t, out, "\r")
	assert.NotContains(t, out, "\u202e")
	assert.Contains(t, out, `nsid evil\x1b]0;pwned\x07`)
	assert.Contains(t, out, `(NOERROR 1.2.3.4\x0d\x0aFindings: none)`)
	assert.Contains(t, out, `http://portal/\u202egnp.exe`)
	assert.Contains(t, out, `measured: answered 302\x1b[2J`)
	assert.Contains(t, out, `! latency anchor: line one\x0aline two`)
	assert.Equal(t, strings.Count(render(t, fixture(), report.Options{}), "\n"), strings.Count(out, "\n"), "no line added")
}

func TestFindingsGroupsByAreaInOrder(t *testing.T) {
	r := fixture()
	r.Verdicts = append(r.Verdicts, report.Verdict{ID: "from_the_future", Area: "elsewhere"})
	var got []report.Area
	n := 0
	for _, g := range report.Findings(r) {
		got = append(got, g.Area)
		n += len(g.Verdicts)
		for _, v := range g.Verdicts {
			assert.Equal(t, g.Area, v.Area)
		}
	}
	assert.Equal(t, []report.Area{report.AreaNetwork, report.AreaWiFi, report.AreaLine, report.AreaDNS}, got)
	assert.Equal(t, len(fixture().Verdicts), n, "an unknown area's verdict is left out")
	line := report.Findings(r)[2]
	assert.Equal(t, []report.VerdictID{report.VerdictLineSaturated, report.VerdictBufferbloat, report.VerdictIPv6Missing},
		[]report.VerdictID{line.Verdicts[0].ID, line.Verdicts[1].ID, line.Verdicts[2].ID}, "the report's order within an area")
	assert.Equal(t, "Internet line", report.AreaLine.Title())
	assert.Equal(t, "elsewhere", report.Area("elsewhere").Title())
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderReturnsTheWriteError(t *testing.T) {
	assert.EqualError(t, report.Render(failingWriter{}, fixture(), report.Options{}), "disk full")
}

// TestRenderTunnelComparison: both legs side by side, then whose the
// slowdown is; a failed leg says why.
func TestRenderTunnelComparison(t *testing.T) {
	r := quickFixture()
	r.Tunnel = &report.TunnelReport{
		Direct:     report.PathResult{Server: "https://gw:8443", IdleMS: 12, IncreaseMS: 15, DownloadMbps: 92.5, UploadMbps: 19, RPM: 1800},
		Tunnel:     report.PathResult{Server: "http://10.99.0.1", Error: "download: EOF\x1b[2J"},
		Bottleneck: report.BottleneckUnknown, Summary: "The tunnel could not be compared with the line: through the tunnel, download: EOF.",
	}
	out := render(t, r, report.Options{Parts: report.PartFigures})
	assert.Contains(t, out, "to the gateway               down         up     idle  under load    RPM\n")
	assert.Contains(t, out, "direct                  92.5Mbit/s  19.0Mbit/s   12.0ms       +15ms   1800\n")
	assert.Contains(t, out, "through the tunnel     download: EOF\\x1b[2J\n")
	assert.Contains(t, out, "The tunnel could not be compared with the line: through the tunnel, download: EOF.\n")
}

// TestRenderUplinks: the uplinks in the same table, the one in use
// starred, then the recommendation.
func TestRenderUplinks(t *testing.T) {
	r := quickFixture()
	r.Uplinks = &report.UplinksReport{Uplinks: []report.UplinkResult{
		{Interface: "eth0", Label: "Ethernet (eth0)", Default: true, IdleMS: 0.1, IncreaseMS: 303, DownloadMbps: 15, UploadMbps: 0.8, RPM: 206},
		{Interface: "usb0", Label: "phone (usb0)", Error: "could not be measured"},
	}, Best: "eth0", Recommendation: "stay on Ethernet (eth0)."}
	out := render(t, r, report.Options{Parts: report.PartFigures})
	assert.Contains(t, out, "uplinks                      down         up     idle  under load    RPM\n")
	assert.Contains(t, out, "Ethernet (eth0) *       15.0Mbit/s   0.8Mbit/s    0.1ms      +303ms    206\n")
	assert.Contains(t, out, "phone (usb0)           could not be measured\n(* in use now)\nstay on Ethernet (eth0).\n")
}

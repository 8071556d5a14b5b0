package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/netdiag/report"
)

// update rewrites the golden files: go test ./netdiag/report -update.
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func ptr[T any](v T) *T { return &v }

// fixture is a full run's report with every field set, so a change to
// any type's JSON shows in its golden file.
func fixture() *report.Report {
	return &report.Report{
		Schema:     report.Schema,
		StartedAt:  time.Date(2025, 3, 14, 9, 26, 53, 589000000, time.UTC),
		DurationMS: 9412,
		Mode:       report.ModeFull,
		Server:     "https://gw.example.com:8443",
		Latency: report.LatencyReport{Targets: []report.LatencyTarget{
			{Name: "router", Addr: "192.168.77.1", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MinMS: 0.112, MedianMS: 0.147, P90MS: 0.2, JitterMS: 0.031, Samples: 10, Sent: 10}},
			{Name: "gateway", Addr: "198.18.2.2", Method: report.MethodSTAMP, LatencyStats: report.LatencyStats{MinMS: 21.5, MedianMS: 24.25, P90MS: 31.75, JitterMS: 2.125, LossPct: 10, Samples: 9, Sent: 10}},
			{Name: "anchor", Addr: "203.0.113.9", Method: report.MethodNone, LatencyStats: report.LatencyStats{LossPct: 100, Sent: 10}, Error: "icmp: no answer to 10 probes\ntcp: dial tcp 203.0.113.9:443: i/o timeout"},
		}},
		Service: &report.ServiceReport{URL: "https://gw.example.com:8443/healthz", Port: 8443, Answers: true, Status: 200, RTTMS: 48.5},
		Throughput: &report.ThroughputReport{DownloadMbps: 14.2, UploadMbps: 0.9, Streams: 9, Bytes: 9123456, Stable: false, ServerCapMbps: 100,
			Download: &report.DirectionReport{Mbps: 14.2, Streams: 9, Bytes: 8023456, Stable: true, DurationMS: 3500, Counting: "receiver"},
			Upload:   &report.DirectionReport{Mbps: 0.9, Streams: 1, Bytes: 1100000, Stable: false, DurationMS: 4000, Counting: "sender", Error: "upload: stream 1: unexpected EOF"}},
		Responsiveness: &report.ResponsivenessReport{IdleMS: 24.25, LoadedDownMS: 180.5, LoadedUpMS: 328.25, RPM: 212, BufferbloatGrade: "D", IncreaseMS: 304, Method: report.MethodSTAMP, ForeignProbes: 30, SelfProbes: 28},
		DNS: &report.DNSReport{
			Resolvers: []report.ResolverReport{
				{Addr: "192.168.77.1:53", Role: "system", Source: "resolv.conf", LatencyStats: report.LatencyStats{MinMS: 1.5, MedianMS: 2.25, P90MS: 4, JitterMS: 0.5, Samples: 10, Sent: 10},
					UDP: ptr(true), TCP: ptr(false), Resolves: ptr(true), EDNS: ptr(true), Truncation: "tcp_failed", AD: ptr(false), NSID: "isp-dns-3",
					NXDOMAIN: "rewritten", RewrittenTo: []string{"198.18.0.80", "198.18.0.81"}, AnswerFrom: "198.18.0.53:53"},
				{Addr: "10.99.0.1:53", Role: "company", LatencyStats: report.LatencyStats{MinMS: 20, MedianMS: 22, P90MS: 25, Samples: 10, Sent: 10},
					UDP: ptr(true), TCP: ptr(true), Resolves: ptr(false), ProbeAnswer: "REFUSED for example.com", EDNS: nil, NXDOMAIN: "ok"},
				{Role: "system", Error: "cannot find the system's resolvers: open /etc/resolv.conf: no such file or directory"},
			},
			Filter: &report.FilterReport{Canary: "login.phishing.test", CompanyBlocks: ptr(false), CompanyAnswer: "NOERROR 198.18.0.80", Control: "example.com", ControlResolves: ptr(true),
				BypassedBy: []string{"192.168.77.1:53"}},
			Consistency: &report.ConsistencyReport{Name: "example.com", Company: []string{"93.184.215.14"},
				Differs: []report.ResolverAnswers{{Resolver: "192.168.77.1:53", Answers: []string{"198.18.0.80"}}}},
			Interception: &report.InterceptReport{Intercepted: true, Probes: []report.InterceptProbe{
				{Addr: "192.0.2.1:53", Answered: true, RTTMS: 0.4, Answer: "NOERROR 198.18.0.80"},
				{Addr: "[2001:db8::1]:53", Error: "connect: network is unreachable"},
			}},
		},
		Path: &report.PathReport{
			UDP:     &report.UDPReport{Port: 51820, Sent: 3, Error: "no answer to 3 probes within 1s"},
			Loss:    &report.LossReport{Method: report.MethodSTAMP, Sent: 100, LossPct: 7, MedianMS: 25.5, MinMS: 21.25},
			MTU:     &report.MTUReport{PathMTU: 1400, TunnelMTU: 1320},
			Captive: &report.CaptiveReport{URL: "http://gw.example.com/generate_204", Captive: true, Status: 302, RedirectTo: "http://portal.example/login"},
			Public:  &report.PublicReport{Addr: "100.64.3.7", Local: "192.168.77.10", NAT: true, CGNAT: true},
			IPv6:    &report.IPv6Report{GlobalAddr: false},
		},
		Network: &report.NetworkReport{Interface: "wlan0", Type: "wifi", WiFi: &report.WiFiReport{SignalDBM: ptr(-74), LinkMbps: ptr(72.2), Security: "open", SSIDHash: "0123456789abcdef"},
			RouterMS: ptr(0.147), GatewayMS: ptr(24.25)},
		Verdicts: []report.Verdict{
			{ID: report.VerdictLineSaturated, Severity: report.SeverityCritical, Area: report.AreaLine, Summary: "This line cannot carry a video call right now.", Evidence: "0.9 Mbit/s up", Threshold: "3 Mbit/s each way, and under 150 ms to the gateway with the line idle (Zoom's group HD video needs 3.0 Mbit/s; ITU-T G.114: 150 ms)"},
			{ID: report.VerdictCaptivePortal, Severity: report.SeverityCritical, Area: report.AreaNetwork, Summary: "This network wants you to sign in on a web page before it lets traffic through.", Evidence: "http://gw.example.com/generate_204 answered 302, not 204, redirecting to http://portal.example/login", Threshold: "a 204 No Content answer from the check URL"},
			{ID: report.VerdictDNSFilterOff, Severity: report.SeverityCritical, Area: report.AreaDNS, Summary: "The company's phishing and malware filter is not in effect: its resolver does not block a name it must block.", Evidence: "login.phishing.test: the company resolver answered NOERROR 198.18.0.80, which is no block", Threshold: "a block for the canary"},
			{ID: report.VerdictWiFiWeak, Severity: report.SeverityWarning, Area: report.AreaWiFi, Summary: "The Wi-Fi signal is weak here, which slows the connection and makes it drop.", Evidence: "signal -74 dBm", Threshold: "-70 dBm or stronger"},
			{ID: report.VerdictBufferbloat, Severity: report.SeverityWarning, Area: report.AreaLine, Summary: "Delay rises by 304 ms when the line is busy, so calls stutter while anyone uploads or downloads.", Evidence: "idle 24 ms, loaded 181 ms down / 328 ms up: grade D", Threshold: "grade B or better (increase under 60 ms)"},
			{ID: report.VerdictUntrustedNetwork, Severity: report.SeverityWarning, Area: report.AreaNetwork, Summary: "Treat this network as untrusted: it has a captive portal, and its Wi-Fi is open (unencrypted).", Evidence: "it has a captive portal; its Wi-Fi is open (unencrypted)", Threshold: "encrypted Wi-Fi, no portal, honest DNS"},
			{ID: report.VerdictIPv6Missing, Severity: report.SeverityInfo, Area: report.AreaLine, Summary: "This connection has no IPv6; everything works over IPv4.", Evidence: "no global IPv6 address on any interface", Threshold: "a global unicast IPv6 address"},
		},
		Suggestions: []report.Suggestion{
			{ID: report.SuggestionSignInToPortal, Summary: "Open a browser and sign in to this network's portal, then run the check again.", Because: []report.VerdictID{report.VerdictCaptivePortal}},
			{ID: report.SuggestionUseHotspot, Summary: "Switch to your phone's mobile hotspot for calls and work: this line cannot keep up.", Because: []report.VerdictID{report.VerdictLineSaturated}},
			{ID: report.SuggestionEnableSQM, Summary: "Turn on Smart Queue Management (SQM, or fq_codel/cake) on your router, or pause large uploads and downloads during calls.", Because: []report.VerdictID{report.VerdictBufferbloat}},
		},
		Summary: "This line cannot carry a video call right now. (5 more findings below.)",
		Thresholds: report.Thresholds{BufferbloatGradesMS: map[string]float64{"A+": 5, "A": 30, "B": 60, "C": 200, "D": 400}, StableWithinPct: 5, DirectionBudgetMS: 4000,
			Verdicts: report.VerdictThresholds{VideoCallMbps: 3, VideoCallLoadedMS: 150, VideoCallIdleMS: 150, SlowDownMbps: 25, SlowUpMbps: 3, BufferbloatGrade: "C", HighLossPct: 2,
				WiFiWeakDBM: -70, LANHighMS: 10, LANHighP90MS: 30, DNSSlowMS: 100, DNSBrokenLossPct: 50, DefaultTunnelMTU: 1420, PriorLoadQueueMS: 10}},
		Errors: []report.ProbeError{{Probe: "latency anchor", Error: "icmp: no answer to 10 probes"}, {Probe: "upload", Error: "upload: stream 1: unexpected EOF"}},
	}
}

// quickFixture is a --quick run on a healthy line: most sections absent.
func quickFixture() *report.Report {
	return &report.Report{Schema: report.Schema, StartedAt: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC), DurationMS: 1002, Mode: report.ModeQuick, Server: "http://127.0.0.1:33789",
		Latency:        report.LatencyReport{Targets: []report.LatencyTarget{{Name: "gateway", Addr: "127.0.0.1", Method: report.MethodICMP, LatencyStats: report.LatencyStats{MinMS: 0.05, MedianMS: 0.07, P90MS: 0.1, JitterMS: 0.05, Samples: 10, Sent: 10}}}},
		Responsiveness: &report.ResponsivenessReport{IdleMS: 0.07, Method: report.MethodICMP}, Path: &report.PathReport{}, Verdicts: []report.Verdict{}, Suggestions: []report.Suggestion{},
		Summary: "Quick check: the company gateway answers in under 1 ms with no notable loss; run without --quick to test speed and behaviour under load."}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), string(got), "%s differs; if the change is meant, run go test ./netdiag/report -update and review the diff", path)
}

// TestJSONGolden: the report's JSON, as `tether diag --json` prints it,
// stays byte for byte what readers of tether.report/v1 know. The golden
// files were written by the code before the types moved here.
func TestJSONGolden(t *testing.T) {
	for name, rep := range map[string]*report.Report{"report.json.golden": fixture(), "quick.json.golden": quickFixture()} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		require.NoError(t, enc.Encode(rep))
		golden(t, name, b.Bytes())

		var back report.Report
		require.NoError(t, json.Unmarshal(b.Bytes(), &back))
		assert.Equal(t, rep, &back, "%s: the JSON reads back into the same report", name)
	}
}

// TestSchemaDocumentListsEveryID: REPORT.md, the contract, names every
// verdict and suggestion a report can carry.
func TestSchemaDocumentListsEveryID(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "REPORT.md"))
	require.NoError(t, err)
	for _, id := range report.VerdictIDs() {
		assert.Contains(t, string(doc), "| `"+string(id)+"`", "REPORT.md's verdict table lacks %s", id)
	}
	for _, id := range report.SuggestionIDs() {
		assert.Contains(t, string(doc), "`"+string(id)+"`", "REPORT.md lacks the suggestion %s", id)
	}
	for _, a := range report.Areas() {
		assert.Contains(t, string(doc), "`"+string(a)+"`", "REPORT.md lacks the area %s", a)
	}
}

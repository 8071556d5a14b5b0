package report

import "time"

// Schema names the report format. Consumers (the helpdesk, scripts) check
// it; fields are only ever added under the same schema, never renamed or
// removed. See netdiag/REPORT.md.
const Schema = "tether.report/v1"

// Report is the result of a diagnostics run. It is the contract the
// helpdesk and scripts read, documented in netdiag/REPORT.md.
type Report struct {
	Schema     string    `json:"schema"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Mode       Mode      `json:"mode"`
	Server     string    `json:"server"`

	Latency LatencyReport `json:"latency"`
	// Service is the gateway's service (its /healthz), checked in every
	// mode; absent when the gateway could not be resolved.
	Service        *ServiceReport        `json:"service,omitempty"`
	Throughput     *ThroughputReport     `json:"throughput,omitempty"`
	Responsiveness *ResponsivenessReport `json:"responsiveness,omitempty"`
	DNS            *DNSReport            `json:"dns,omitempty"`
	Path           *PathReport           `json:"path,omitempty"`
	Network        *NetworkReport        `json:"network,omitempty"`
	// Uplinks compares the computer's uplinks (`tether diag --uplinks`);
	// absent otherwise.
	Uplinks *UplinksReport `json:"uplinks,omitempty"`
	// Tunnel compares the path beside the tunnel and inside it (a run
	// with the tunnel up, see TunnelReport); nil otherwise.
	Tunnel *TunnelReport `json:"tunnel,omitempty"`

	// Verdicts are the findings, most severe first; Suggestions follow
	// from them.
	Verdicts    []Verdict    `json:"verdicts"`
	Suggestions []Suggestion `json:"suggestions"`

	// Summary is one plain sentence for a person.
	Summary string `json:"summary"`
	// Thresholds are the limits this report's grades and verdicts used.
	Thresholds Thresholds `json:"thresholds"`
	// Errors lists what could not be measured, and why.
	Errors []ProbeError `json:"errors,omitempty"`
}

// Mode is how thorough a run is.
type Mode string

// The run modes.
const (
	ModeFull  Mode = "full"  // latency, throughput and responsiveness
	ModeQuick Mode = "quick" // idle latency only, no load on the line
)

// LatencyReport holds the idle latency to each target.
type LatencyReport struct {
	Targets []LatencyTarget `json:"targets"`
}

// Latency probe methods, in the order they are tried.
const (
	MethodICMP  = "icmp"
	MethodSTAMP = "stamp"
	MethodTCP   = "tcp"
	MethodNone  = "none"
)

// LatencyTarget is the idle latency to one target.
type LatencyTarget struct {
	Name string `json:"name"` // "router", "gateway" or an anchor's name
	Addr string `json:"addr"`
	// Method is the probe that answered: "icmp", "stamp" or "tcp", or
	// "none" when none did.
	Method string `json:"method"`
	LatencyStats
	Error string `json:"error,omitempty"`
}

// LatencyStats summarizes round-trip samples. Times are milliseconds.
type LatencyStats struct {
	MinMS    float64 `json:"min_ms"`
	MedianMS float64 `json:"median_ms"`
	P90MS    float64 `json:"p90_ms"`
	JitterMS float64 `json:"jitter_ms"`
	LossPct  float64 `json:"loss_pct"`
	Samples  int     `json:"samples"` // round trips answered
	Sent     int     `json:"sent"`
}

// ThroughputReport is goodput in each direction.
type ThroughputReport struct {
	DownloadMbps float64 `json:"download_mbps"`
	UploadMbps   float64 `json:"upload_mbps"`
	// Streams is the most parallel streams used in either direction.
	Streams int `json:"streams"`
	// Bytes moved in both directions, ramp-up included.
	Bytes int64 `json:"bytes"`
	// Stable is true when both directions settled within their budget;
	// false means the figure is the last window's and may be low.
	Stable bool `json:"stable"`
	// ServerCapMbps is the server's bandwidth guard, per direction, when
	// it advertises one: a figure near it says the server, not the line,
	// set the limit.
	ServerCapMbps float64          `json:"server_cap_mbps,omitempty"`
	Download      *DirectionReport `json:"download,omitempty"`
	Upload        *DirectionReport `json:"upload,omitempty"`
}

// DirectionReport details one direction's throughput test.
type DirectionReport struct {
	Mbps       float64 `json:"mbps"`
	Streams    int     `json:"streams"`
	Bytes      int64   `json:"bytes"`
	Stable     bool    `json:"stable"`
	DurationMS int64   `json:"duration_ms"`
	// Counting says how bytes were counted: "receiver" (bytes read, or
	// bytes the peer acknowledged) or "sender" (bytes written: an
	// overestimate on slow lines, used only where the OS cannot tell).
	Counting string `json:"counting"`
	Error    string `json:"error,omitempty"`
}

// ResponsivenessReport is latency under working conditions.
type ResponsivenessReport struct {
	// IdleMS is the gateway's median idle RTT.
	IdleMS float64 `json:"idle_ms"`
	// LoadedDownMS and LoadedUpMS are the gateway's median RTT while the
	// line is saturated in each direction (zero when not measured).
	LoadedDownMS float64 `json:"loaded_down_ms"`
	LoadedUpMS   float64 `json:"loaded_up_ms"`
	// RPM is round trips per minute under load, per the IETF draft
	// "Responsiveness under Working Conditions" (zero when not measured).
	RPM int `json:"rpm"`
	// BufferbloatGrade is A+ to F on the DSLReports scale, from the
	// latency increase under load; empty when not measured.
	BufferbloatGrade string `json:"bufferbloat_grade,omitempty"`
	// IncreaseMS is the latency increase the grade is based on.
	IncreaseMS float64 `json:"increase_ms"`
	// Method is the latency probe used for idle and loaded RTT.
	Method string `json:"method"`
	// Probe counts behind RPM.
	ForeignProbes int `json:"foreign_probes"`
	SelfProbes    int `json:"self_probes"`
	// The trimmed means RPM combines: the foreign probes' TCP handshake,
	// TLS handshake (zero without TLS) and HTTP GET, each timed apart,
	// and the self probes' GET on the loaded connections.
	ForeignTCPMS  float64 `json:"foreign_tcp_ms"`
	ForeignTLSMS  float64 `json:"foreign_tls_ms"`
	ForeignHTTPMS float64 `json:"foreign_http_ms"`
	SelfHTTPMS    float64 `json:"self_http_ms"`
}

// ProbeError records a probe that failed.
type ProbeError struct {
	Probe string `json:"probe"`
	Error string `json:"error"`
}

// Thresholds are the limits a report used, so a reader sees why a grade
// or verdict fired.
type Thresholds struct {
	// BufferbloatGradesMS maps each grade to the increase it must stay
	// under (F has none).
	BufferbloatGradesMS map[string]float64 `json:"bufferbloat_grades_ms"`
	// StableWithinPct: goodput counts as stable when successive windows
	// agree within this percentage.
	StableWithinPct float64 `json:"stable_within_pct"`
	// DirectionBudgetMS bounds each throughput direction.
	DirectionBudgetMS int64 `json:"direction_budget_ms"`
	// Verdicts are the limits behind the verdicts.
	Verdicts VerdictThresholds `json:"verdicts"`
}

// VerdictThresholds are the limits behind the verdicts, for the report.
type VerdictThresholds struct {
	VideoCallMbps     float64 `json:"video_call_mbps"`
	VideoCallLoadedMS float64 `json:"video_call_loaded_ms"`
	VideoCallIdleMS   float64 `json:"video_call_idle_ms"`
	SlowDownMbps      float64 `json:"slow_down_mbps"`
	SlowUpMbps        float64 `json:"slow_up_mbps"`
	BufferbloatGrade  string  `json:"bufferbloat_grade"`
	HighLossPct       float64 `json:"high_loss_pct"`
	WiFiWeakDBM       int     `json:"wifi_weak_dbm"`
	LANHighMS         float64 `json:"lan_high_ms"`
	LANHighP90MS      float64 `json:"lan_high_p90_ms"`
	DNSSlowMS         float64 `json:"dns_slow_ms"`
	DNSBrokenLossPct  float64 `json:"dns_broken_loss_pct"`
	DefaultTunnelMTU  int     `json:"default_tunnel_mtu"`
	PriorLoadQueueMS  float64 `json:"prior_load_queue_ms"`
	// TunnelOverheadMS and TunnelThroughputRatio are
	// tunnel_overhead_high's limits: the tunnel adding more than this
	// under load, or carrying under this share of the direct path's
	// throughput.
	TunnelOverheadMS      float64 `json:"tunnel_overhead_ms"`
	TunnelThroughputRatio float64 `json:"tunnel_throughput_ratio"`
}

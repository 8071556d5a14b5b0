package report

// UplinksReport compares this computer's uplinks, each measured on its
// own in one run (`tether diag --uplinks`): every probe and transfer of a
// measurement is bound to its interface. The report it sits in is the
// default uplink's.
type UplinksReport struct {
	Uplinks []UplinkResult `json:"uplinks"`
	// Best names the interface that suits a call best; empty when no
	// uplink could be measured.
	Best string `json:"best,omitempty"`
	// Switch says Best is clearly better than the uplink in use now.
	Switch bool `json:"switch"`
	// Recommendation is one sentence for a person, with both figures.
	Recommendation string `json:"recommendation,omitempty"`
}

// UplinkResult is one uplink's measurement.
type UplinkResult struct {
	Interface string `json:"interface"`
	// Type is as in NetworkReport: wifi, ethernet, cellular, tethered...
	Type string `json:"type"`
	// Label names it for a person: "Wi-Fi (wlan0)", "phone (usb0)".
	Label string `json:"label"`
	// Default: the uplink carries the default route now (lowest metric).
	Default      bool    `json:"default"`
	IdleMS       float64 `json:"idle_ms,omitempty"`
	DownloadMbps float64 `json:"download_mbps,omitempty"`
	UploadMbps   float64 `json:"upload_mbps,omitempty"`
	// IncreaseMS is the latency added under load (the larger direction).
	IncreaseMS float64 `json:"increase_ms,omitempty"`
	RPM        int     `json:"rpm,omitempty"`
	// Error says why the uplink could not be measured.
	Error string `json:"error,omitempty"`
}

// TunnelReport compares the path to the gateway beside the tunnel and
// inside it, both measured in one run (`tether diag --compare-tunnel`,
// and tetherd's full diagnosis while connected): idle and loaded latency
// and throughput direct to the gateway's public API, then through the
// tunnel to its tunnel address. It says whose a slowdown is.
type TunnelReport struct {
	Direct PathResult `json:"direct"`
	Tunnel PathResult `json:"tunnel"`
	// OverheadMS is the tunnel's round trip under load minus the direct
	// path's (idle plus increase, each the larger direction).
	OverheadMS float64 `json:"overhead_ms"`
	// DownRatio and UpRatio are the tunnel's throughput over the direct
	// path's; 0 when either is unknown.
	DownRatio float64 `json:"down_ratio,omitempty"`
	UpRatio   float64 `json:"up_ratio,omitempty"`
	// Bottleneck is "tunnel" (the tunnel and the gateway cost much more
	// than the line: tunnel_overhead_high), "line" (the home line is slow
	// or bloated, the tunnel adds little), "none", or "unknown" (a leg
	// could not be measured).
	Bottleneck string `json:"bottleneck"`
	// Summary says it for a person, with both legs' figures.
	Summary string `json:"summary"`
}

// The bottlenecks a TunnelReport names.
const (
	BottleneckTunnel  = "tunnel"
	BottleneckLine    = "line"
	BottleneckNone    = "none"
	BottleneckUnknown = "unknown"
)

// PathResult is one leg of a TunnelReport.
type PathResult struct {
	// Server is the measurement server the leg used.
	Server       string  `json:"server"`
	IdleMS       float64 `json:"idle_ms,omitempty"`
	IncreaseMS   float64 `json:"increase_ms,omitempty"`
	DownloadMbps float64 `json:"download_mbps,omitempty"`
	UploadMbps   float64 `json:"upload_mbps,omitempty"`
	RPM          int     `json:"rpm,omitempty"`
	// Error says why the leg could not be measured.
	Error string `json:"error,omitempty"`
}

// LoadedMS is the leg's round trip under load.
func (p PathResult) LoadedMS() float64 { return p.IdleMS + p.IncreaseMS }

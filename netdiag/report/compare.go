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

// TunnelComparison sets the line measured directly to the gateway's
// public address beside the same measurement through the tunnel to its
// tunnel address, in one run, so a slowdown can be placed: the home
// line's, or the tunnel's and the gateway's.
type TunnelComparison struct {
	Direct PathFigures `json:"direct"`
	Tunnel PathFigures `json:"tunnel"`
	// ExtraIdleMS and ExtraIncreaseMS are what the tunnel adds to the
	// idle latency and to the latency under load; DownloadRatio and
	// UploadRatio are tunnel/direct throughput.
	ExtraIdleMS     float64 `json:"extra_idle_ms"`
	ExtraIncreaseMS float64 `json:"extra_increase_ms"`
	DownloadRatio   float64 `json:"download_ratio,omitempty"`
	UploadRatio     float64 `json:"upload_ratio,omitempty"`
	// Bottleneck is "line" (the tunnel adds little to what the line
	// costs), "tunnel" (the tunnel or the gateway adds much more), or
	// "unknown" when one side could not be measured.
	Bottleneck string `json:"bottleneck"`
	// Error says why the tunnel side could not be measured.
	Error string `json:"error,omitempty"`
}

// PathFigures are one path's idle and loaded latency and throughput.
type PathFigures struct {
	Server       string  `json:"server"`
	IdleMS       float64 `json:"idle_ms,omitempty"`
	DownloadMbps float64 `json:"download_mbps,omitempty"`
	UploadMbps   float64 `json:"upload_mbps,omitempty"`
	LoadedDownMS float64 `json:"loaded_down_ms,omitempty"`
	LoadedUpMS   float64 `json:"loaded_up_ms,omitempty"`
	IncreaseMS   float64 `json:"increase_ms,omitempty"`
	RPM          int     `json:"rpm,omitempty"`
}

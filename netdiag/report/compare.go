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

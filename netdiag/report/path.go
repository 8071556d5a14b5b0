package report

// ServiceReport says whether the gateway's service answers, not only its
// host: a host answers pings while the gateway process is down.
type ServiceReport struct {
	// URL is what was asked, its password redacted: the server's
	// /healthz, with the run's TLS settings (the pin).
	URL  string `json:"url"`
	Port int    `json:"port"`
	// Answers: an HTTP answer with a status below 500 came. A server
	// without /healthz (a third-party measurement server) answers 404
	// and counts: it serves.
	Answers bool `json:"answers"`
	Status  int  `json:"status,omitempty"`
	// RTTMS is the whole exchange, connection and TLS included.
	RTTMS float64 `json:"rtt_ms,omitempty"`
	// Error says why it does not answer, in words: "connection refused",
	// "no answer within 1.5s", "it answered 503 Service Unavailable", a
	// certificate that does not match the pin.
	Error string `json:"error,omitempty"`
}

// PathReport is what lies between this host and the gateway.
type PathReport struct {
	UDP *UDPReport `json:"udp,omitempty"`
	// Loss is UDP loss to the gateway from a longer STAMP series than the
	// latency probes: UDP is what the tunnel carries, and networks police
	// it apart from ICMP.
	Loss    *LossReport    `json:"udp_loss,omitempty"`
	MTU     *MTUReport     `json:"mtu,omitempty"`
	Captive *CaptiveReport `json:"captive_portal,omitempty"`
	Public  *PublicReport  `json:"public_address,omitempty"`
	IPv6    *IPv6Report    `json:"ipv6,omitempty"`
}

// UDPReport is whether UDP reaches the gateway's WireGuard port.
type UDPReport struct {
	Port      uint16  `json:"port"`
	Reachable bool    `json:"reachable"`
	RTTMS     float64 `json:"rtt_ms,omitempty"`
	Sent      int     `json:"sent"`
	Error     string  `json:"error,omitempty"`
}

// LossReport is loss over many probes.
type LossReport struct {
	Method   string  `json:"method"`
	Sent     int     `json:"sent"`
	LossPct  float64 `json:"loss_pct"`
	MedianMS float64 `json:"median_ms"`
	// MinMS is the fastest round trip: with the median, how far a queue
	// other traffic keeps stands above the line's own delay.
	MinMS float64 `json:"min_ms"`
}

// MTUReport is the path MTU toward the gateway and the tunnel MTU that
// fits inside it.
type MTUReport struct {
	// PathMTU is the largest IPv4 packet that reached the gateway and came
	// back, with DF set: STAMP packets padded to size, echoed at the same
	// size by the gateway's reflector.
	PathMTU int `json:"path_mtu"`
	// TunnelMTU is PathMTU less WireGuard's overhead: 80 bytes, the IPv6
	// worst case, as wg-quick reckons (1500 gives its default 1420), so
	// the tunnel still fits if the endpoint moves to IPv6.
	TunnelMTU int    `json:"tunnel_mtu"`
	Error     string `json:"error,omitempty"`
}

// CaptiveReport is the captive-portal check: a URL that answers 204 No
// Content on an open network.
type CaptiveReport struct {
	URL     string `json:"url"`
	Captive bool   `json:"captive"`
	Status  int    `json:"status,omitempty"`
	// RedirectTo is where a portal sent the request.
	RedirectTo string `json:"redirect_to,omitempty"`
	Error      string `json:"error,omitempty"`
}

// PublicReport is this host's address as the gateway sees it.
type PublicReport struct {
	Addr  string `json:"addr"`
	Local string `json:"local"`
	// NAT: the gateway sees another address than the one we sent from.
	NAT bool `json:"nat"`
	// CGNAT: the address the gateway sees is in 100.64.0.0/10, the
	// carrier-grade NAT range.
	CGNAT bool   `json:"cgnat"`
	Error string `json:"error,omitempty"`
}

// IPv6Report is whether this host has IPv6 that reaches anywhere.
type IPv6Report struct {
	// GlobalAddr: some interface has a global unicast IPv6 address (not
	// link-local, not unique-local).
	GlobalAddr bool `json:"global_addr"`
	// GatewayReachable: a TCP connection to the gateway over IPv6
	// worked; unknown (absent) when the gateway has no IPv6 address.
	GatewayReachable *bool `json:"gateway_reachable,omitempty"`
}

// NetworkReport is the local network: the default route's interface and,
// on Wi-Fi, the radio facts the OS exposes. Unknown facts are absent,
// never guessed.
type NetworkReport struct {
	Interface string `json:"interface,omitempty"`
	// Type is wifi, ethernet, cellular, tethered, virtual or unknown.
	Type string      `json:"type"`
	WiFi *WiFiReport `json:"wifi,omitempty"`
	// RouterMS and GatewayMS are the idle medians to the home router and
	// the company gateway: a slow router means Wi-Fi or LAN trouble, a
	// fast router and a slow gateway means the ISP.
	RouterMS  *float64 `json:"router_ms,omitempty"`
	GatewayMS *float64 `json:"gateway_ms,omitempty"`
}

// WiFiReport holds radio facts. The SSID is never reported: networks'
// names and BSSIDs locate a person. SSIDHash, salted per installation,
// lets the helpdesk see "the same network as last time" and nothing more.
type WiFiReport struct {
	SignalDBM *int     `json:"signal_dbm,omitempty"`
	LinkMbps  *float64 `json:"link_mbps,omitempty"`
	// Security is open, wep, wpa, wpa2 or wpa3; absent when unknown.
	Security string `json:"security,omitempty"`
	SSIDHash string `json:"ssid_hash,omitempty"`
}

package gateway

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherwfh/tether/netdiag/measureserver"
	"github.com/tetherwfh/tether/netdiag/stamp"
	"github.com/tetherwfh/tether/tunnel"
)

// wgMetrics are the WireGuard endpoint's Prometheus metrics.
type wgMetrics struct {
	enrollments *prometheus.CounterVec
	revocations prometheus.Counter
	devices     *prometheus.CounterVec
}

func newWGMetrics(reg prometheus.Registerer, e *wgEndpoint) *wgMetrics {
	m := &wgMetrics{
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tether", Subsystem: "wireguard", Name: "enrollments_total",
			Help: "Enrollment attempts by result (ok, refused, invalid, limited, failed).",
		}, []string{"result"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tether", Subsystem: "wireguard", Name: "revocations_total",
			Help: "Peers revoked.",
		}),
		devices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tether", Subsystem: "wireguard", Name: "device_checks_total",
			Help: "Devices asking about themselves (GET /v1/device) by result (ok, unknown: a missing or wrong credential, revoked, limited, failed).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.enrollments, m.revocations, m.devices, &peerCollector{e: e})
	// The userspace data plane's subnet router; zero in tun mode, where
	// the kernel forwards and the nftables table counts.
	fwd := func(name, help string, v func(tunnel.ForwardStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "tether", Subsystem: "forward", Name: name, Help: help},
			func() float64 { return v(e.dev.forwardStats()) })
	}
	reg.MustRegister(
		fwd("tcp_accepted_total", "Peers' TCP connections relayed to the host network.", func(s tunnel.ForwardStats) float64 { return float64(s.TCPAccepted) }),
		fwd("tcp_refused_total", "Peers' TCP connections refused by policy or limits.", func(s tunnel.ForwardStats) float64 { return float64(s.TCPRefused) }),
		fwd("tcp_failed_total", "Peers' TCP connections whose host-side connect failed.", func(s tunnel.ForwardStats) float64 { return float64(s.TCPFailed) }),
		fwd("udp_flows_total", "Peers' UDP flows relayed to the host network.", func(s tunnel.ForwardStats) float64 { return float64(s.UDPFlows) }),
		fwd("udp_refused_total", "Peers' UDP flows refused by policy or limits.", func(s tunnel.ForwardStats) float64 { return float64(s.UDPRefused) }),
	)
	return m
}

// registerMeasureMetrics exports the measurement service's counters.
// registerMeasureMetrics exports one measurement service's counters,
// labelled by the listener it serves ("api" or "tunnel").
func registerMeasureMetrics(reg prometheus.Registerer, service string, stats func() measureserver.Stats) {
	labels := prometheus.Labels{"service": service}
	c := func(name, help string, v func(measureserver.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "tether", Subsystem: "measure", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v(stats())) })
	}
	g := func(name, help string, v func(measureserver.Stats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "tether", Subsystem: "measure", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v(stats())) })
	}
	reg.MustRegister(
		c("bytes_down_total", "Bytes the measurement service sent (downloads).", func(s measureserver.Stats) int64 { return s.BytesDown }),
		c("bytes_up_total", "Bytes the measurement service received (uploads).", func(s measureserver.Stats) int64 { return s.BytesUp }),
		c("rejected_total", "Transfers refused (429) by a concurrency limit or a spent byte budget.", func(s measureserver.Stats) int64 { return s.Rejected }),
		c("stalled_total", "Transfers ended for moving nothing for the stall timeout.", func(s measureserver.Stats) int64 { return s.Stalled }),
		c("budget_cut_total", "Transfers ended short by a spent byte budget.", func(s measureserver.Stats) int64 { return s.BudgetCut }),
		g("active_public", "Public (unauthenticated) transfers running.", func(s measureserver.Stats) int { return s.ActivePublic }),
		g("active_trusted", "Enrolled devices' transfers running.", func(s measureserver.Stats) int { return s.ActiveTrusted }),
	)
}

// registerSTAMPMetrics exports one STAMP reflector's counters.
func registerSTAMPMetrics(reg prometheus.Registerer, service string, r *stamp.Reflector) {
	c := func(result string, v func(stamp.ReflectorStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "tether", Subsystem: "stamp", Name: "packets_total",
			Help: "STAMP packets by what the reflector did with them.", ConstLabels: prometheus.Labels{"service": service, "result": result}},
			func() float64 { return float64(v(r.Stats())) })
	}
	reg.MustRegister(
		c("reflected", func(s stamp.ReflectorStats) uint64 { return s.Reflected }),
		c("malformed", func(s stamp.ReflectorStats) uint64 { return s.Malformed }),
		c("reply", func(s stamp.ReflectorStats) uint64 { return s.Replies }),
		c("refused", func(s stamp.ReflectorStats) uint64 { return s.Refused }),
		c("ratelimited", func(s stamp.ReflectorStats) uint64 { return s.RateLimited }),
	)
}

// peerCollector reads the live device and the store at scrape time:
// peers by state, and handshake age and traffic per active peer (labelled
// by peer ID, never by key or address).
type peerCollector struct{ e *wgEndpoint }

var (
	descPeers     = prometheus.NewDesc("tether_wireguard_peers", "Enrolled peers by state (active, revoked, connected: a handshake in the last 3 minutes).", []string{"state"}, nil)
	descRx        = prometheus.NewDesc("tether_wireguard_peer_rx_bytes", "Bytes received from a peer since the gateway started.", []string{"peer"}, nil)
	descTx        = prometheus.NewDesc("tether_wireguard_peer_tx_bytes", "Bytes sent to a peer since the gateway started.", []string{"peer"}, nil)
	descHandshake = prometheus.NewDesc("tether_wireguard_peer_last_handshake_seconds", "Unix time of a peer's last handshake.", []string{"peer"}, nil)
)

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPeers
	ch <- descRx
	ch <- descTx
	ch <- descHandshake
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	infos, err := c.e.peerInfos(ctx)
	if err != nil {
		return
	}
	var active, revoked, connected float64
	now := c.e.now()
	for _, p := range infos {
		if p.Revoked {
			revoked++
			continue
		}
		active++
		if !p.LastHandshake.IsZero() && now.Sub(p.LastHandshake) < 3*time.Minute {
			connected++
		}
		id := itoa(p.ID)
		ch <- prometheus.MustNewConstMetric(descRx, prometheus.CounterValue, float64(p.RxBytes), id)
		ch <- prometheus.MustNewConstMetric(descTx, prometheus.CounterValue, float64(p.TxBytes), id)
		if !p.LastHandshake.IsZero() {
			ch <- prometheus.MustNewConstMetric(descHandshake, prometheus.GaugeValue, float64(p.LastHandshake.Unix()), id)
		}
	}
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, active, "active")
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, revoked, "revoked")
	ch <- prometheus.MustNewConstMetric(descPeers, prometheus.GaugeValue, connected, "connected")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

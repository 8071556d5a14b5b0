package tunnel

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/tetherwfh/tether/internal/udpguard"
	"github.com/tetherwfh/tether/internal/wgprobe"
)

// WireGuard message types and sizes (whitepaper section 5.4), for counting
// handshakes on the wire.
const (
	msgInitiation     = 1
	msgResponse       = 2
	msgInitiationSize = 148
	msgResponseSize   = 92
)

// defaultProbeLimits bound the probe responder's answers (see
// internal/udpguard). A client's reachability check sends three probes
// 300 ms apart and stops at the first answer, and a quick and a full run
// may follow each other: a burst of 10 and one a second answer every
// client's checks. 200 a second in total bound what forged sources can
// make the port send (12-octet answers: under 20 kbit/s).
var defaultProbeLimits = udpguard.Limits{PerSource: 1, PerSourceBurst: 10, Total: 200, TotalBurst: 400}

// countingBind wraps a conn.Bind to count handshake initiations sent since
// the last response received: wireguard-go keeps that count private.
type countingBind struct {
	conn.Bind
	attempts atomic.Int64
	// answerProbes makes the bind answer netdiag's UDP reachability
	// probes (internal/wgprobe) itself, so a client can tell whether UDP
	// reaches the WireGuard port before it has a session. Gateways set it.
	// It answers only sources udpguard allows (never this host, never
	// the WireGuard port itself or a server port), each within
	// probeLimits.
	answerProbes bool
	// probeLimits bound the answers; zero means defaultProbeLimits.
	// probeNow is the limiter's clock; nil means time.Now.
	probeLimits udpguard.Limits
	probeNow    func() time.Time

	guard                                        atomic.Pointer[udpguard.Guard]
	probesAnswered, probesRefused, probesLimited atomic.Uint64
}

func (b *countingBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, p, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	if b.answerProbes {
		limits := b.probeLimits
		if limits == (udpguard.Limits{}) {
			limits = defaultProbeLimits
		}
		// wireguard-go's sockets listen on every address, and with UDP
		// GRO its endpoints lose the destination (SrcIP), so the guard
		// falls back on the listening address and the interfaces'.
		g, err := udpguard.New(udpguard.Config{Limits: limits, Ports: []uint16{p}, Listen: netip.IPv6Unspecified(), Now: b.probeNow})
		if err != nil {
			_ = b.Bind.Close()
			return nil, 0, fmt.Errorf("tunnel: probe responder: %w", err)
		}
		b.guard.Store(g)
	}
	wrapped := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		wrapped[i] = func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(packets, sizes, eps)
			for j := 0; j < n; j++ {
				if sizes[j] == msgResponseSize && packets[j][0] == msgResponse {
					b.attempts.Store(0)
				}
				if b.answerProbes && wgprobe.IsRequest(packets[j][:sizes[j]]) {
					b.answerProbe(packets[j][:sizes[j]], eps[j])
					sizes[j] = 0 // wireguard-go skips it
				}
			}
			return n, err
		}
	}
	return wrapped, p, nil
}

// answerProbe answers a probe request if its source may be answered.
func (b *countingBind) answerProbe(req []byte, ep conn.Endpoint) {
	switch err := b.guard.Load().Check(endpointAddrPort(ep), ep.SrcIP()); {
	case errors.Is(err, udpguard.ErrRateLimited):
		b.probesLimited.Add(1)
	case err != nil:
		b.probesRefused.Add(1)
	default:
		if b.Bind.Send([][]byte{wgprobe.Answer(req)}, ep) == nil {
			b.probesAnswered.Add(1)
		}
	}
}

// endpointAddrPort is the address and port a datagram came from.
func endpointAddrPort(ep conn.Endpoint) netip.AddrPort {
	if e, ok := ep.(*conn.StdNetEndpoint); ok {
		return e.AddrPort
	}
	ap, _ := netip.ParseAddrPort(ep.DstToString())
	return ap
}

func (b *countingBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == msgInitiationSize && buf[0] == msgInitiation {
			b.attempts.Add(1)
		}
	}
	return b.Bind.Send(bufs, ep)
}

// pinger sends one ICMP echo through the tunnel and waits for the reply.
type pinger func(ctx context.Context, dst netip.Addr) (time.Duration, error)

// wgCore is what both engines share: the wireguard-go device, its
// configuration, the active check and health.
type wgCore struct {
	opts   Options
	engine string
	log    *slog.Logger

	mu      sync.Mutex
	dev     *device.Device
	bind    *countingBind
	iface   string
	upSince time.Time
	peers   []device.NoisePublicKey
	sample  sample
	forced  int
	expired time.Time // when a fast retry last expired the keys
	rtt     time.Duration
	fwmark  uint32
	closed  bool

	stop context.CancelFunc
	done chan struct{}
}

// sample is what the monitor learned at its last tick.
type sample struct {
	at             time.Time
	lastHandshake  time.Time
	rx, tx         uint64
	endpoint       string
	lastRxChange   time.Time
	unansweredFrom time.Time // first tx increase after rx last changed
}

// wgLogger routes wireguard-go's logs to slog at debug level. wireguard-go
// prints peers by public key only, never private material.
func wgLogger(l *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(f string, a ...any) { l.Debug(fmt.Sprintf(f, a...), "src", "wireguard-go") },
		Errorf:   func(f string, a ...any) { l.Warn(fmt.Sprintf(f, a...), "src", "wireguard-go") },
	}
}

// startDevice builds the wireguard-go device on tdev, configures it, and
// brings it up.
func (c *wgCore) startDevice(ctx context.Context, tdev tun.Device, bind conn.Bind) error {
	c.bind = &countingBind{Bind: bind, answerProbes: c.opts.AnswerProbes}
	c.dev = device.NewDevice(tdev, c.bind, wgLogger(c.log))
	uapi, peers, err := c.uapiConfig(ctx)
	if err != nil {
		c.dev.Close()
		c.dev = nil
		return err
	}
	if err := c.dev.IpcSet(uapi); err != nil {
		c.dev.Close()
		c.dev = nil
		// IpcSet's errors name the failing key, never its value.
		return fmt.Errorf("tunnel: configuring wireguard-go: %w", err)
	}
	if err := c.dev.Up(); err != nil {
		c.dev.Close()
		c.dev = nil
		return fmt.Errorf("tunnel: bringing wireguard-go up: %w", err)
	}
	c.peers = peers
	c.upSince = c.opts.Now()
	return nil
}

// uapiConfig renders the config in wireguard-go's configuration protocol
// (the "cross-platform userspace implementation" protocol that wg speaks).
// With one peer, its AllowedIPs gain the plan's routes, so a full-mode plan
// over a config that lists only company prefixes still works.
func (c *wgCore) uapiConfig(ctx context.Context) (string, []device.NoisePublicKey, error) {
	cfg := c.opts.Config
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\n", cfg.Interface.PrivateKey.uapiHex())
	if cfg.Interface.ListenPort != 0 {
		fmt.Fprintf(&b, "listen_port=%d\n", cfg.Interface.ListenPort)
	}
	mark := cfg.Interface.FwMark
	if c.fwmark != 0 {
		mark = c.fwmark
	}
	if mark != 0 {
		fmt.Fprintf(&b, "fwmark=%d\n", mark)
	}
	b.WriteString("replace_peers=true\n")
	var keys []device.NoisePublicKey
	for i, p := range cfg.Peers {
		fmt.Fprintf(&b, "public_key=%s\n", p.PublicKey.uapiHex())
		keys = append(keys, device.NoisePublicKey(p.PublicKey))
		if !p.PresharedKey.IsZero() {
			fmt.Fprintf(&b, "preshared_key=%s\n", p.PresharedKey.uapiHex())
		}
		if p.Endpoint != "" {
			ap, err := ResolveEndpoint(ctx, p.Endpoint)
			if err != nil {
				return "", nil, fmt.Errorf("tunnel: peer %d: %w", i+1, err)
			}
			fmt.Fprintf(&b, "endpoint=%s\n", ap)
		}
		if p.PersistentKeepalive != 0 {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", p.PersistentKeepalive)
		}
		b.WriteString("replace_allowed_ips=true\n")
		allowed := p.AllowedIPs
		if len(cfg.Peers) == 1 && c.opts.Plan != nil {
			allowed = append(append([]netip.Prefix(nil), allowed...), c.opts.Plan.Routes...)
		}
		for _, a := range allowed {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a.Masked())
		}
	}
	return b.String(), keys, nil
}

// ResolveEndpoint turns "host:port" into an address, preferring IPv4 as
// wg-quick's resolver does when both exist.
func ResolveEndpoint(ctx context.Context, ep string) (netip.AddrPort, error) {
	host, port, err := SplitEndpoint(ep)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.WithZone("").Unmap(), port), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolving endpoint %s: %w", host, err)
	}
	best := ips[0]
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			best = ip
			break
		}
	}
	return netip.AddrPortFrom(best.Unmap(), port), nil
}

// deviceStats reads handshake time, counters and endpoint from the device.
func (c *wgCore) deviceStats() (lastHS time.Time, rx, tx uint64, endpoint string, err error) {
	c.mu.Lock()
	dev := c.dev
	c.mu.Unlock()
	if dev == nil {
		return time.Time{}, 0, 0, "", errors.New("tunnel: not up")
	}
	s, err := dev.IpcGet()
	if err != nil {
		return time.Time{}, 0, 0, "", fmt.Errorf("tunnel: reading device state: %w", err)
	}
	var sec, nsec int64
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "public_key":
			if sec != 0 || nsec != 0 {
				if t := time.Unix(sec, nsec); t.After(lastHS) {
					lastHS = t
				}
			}
			sec, nsec = 0, 0
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			n, _ := strconv.ParseUint(v, 10, 64)
			rx += n
		case "tx_bytes":
			n, _ := strconv.ParseUint(v, 10, 64)
			tx += n
		case "endpoint":
			if endpoint == "" {
				endpoint = v
			}
		}
	}
	if sec != 0 || nsec != 0 {
		if t := time.Unix(sec, nsec); t.After(lastHS) {
			lastHS = t
		}
	}
	return lastHS, rx, tx, endpoint, nil
}

// tick takes one sample and updates the stall bookkeeping.
func (c *wgCore) tick() {
	hs, rx, tx, ep, err := c.deviceStats()
	if err != nil {
		return
	}
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.sample
	s := sample{at: now, lastHandshake: hs, rx: rx, tx: tx, endpoint: ep,
		lastRxChange: prev.lastRxChange, unansweredFrom: prev.unansweredFrom}
	if s.lastRxChange.IsZero() {
		s.lastRxChange = c.upSince
	}
	if rx != prev.rx {
		s.lastRxChange, s.unansweredFrom = now, time.Time{}
	} else if tx != prev.tx && s.unansweredFrom.IsZero() {
		s.unansweredFrom = now
	}
	c.sample = s
}

// monitor samples the device and, with a probe address, runs the active
// check until ctx ends.
func (c *wgCore) monitor(ctx context.Context, ping pinger) {
	defer close(c.done)
	t := time.NewTicker(c.opts.ProbeInterval)
	defer t.Stop()
	for {
		c.tick()
		if ping != nil && c.opts.Probe.IsValid() {
			pctx, cancel := context.WithTimeout(ctx, min(c.opts.ProbeInterval, time.Second))
			rtt, err := ping(pctx, c.opts.Probe)
			cancel()
			if err == nil {
				c.mu.Lock()
				c.rtt = rtt
				c.mu.Unlock()
			} else if ctx.Err() == nil {
				c.mu.Lock()
				now := c.opts.Now()
				silent := now.Sub(c.sample.lastRxChange)
				expire := silent >= fastRetryAfter && silent <= fastRetryFor && now.Sub(c.expired) >= fastRetryEvery
				if expire {
					c.expired = now
				}
				c.mu.Unlock()
				c.forceHandshake(expire)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Fast retries. wireguard-go paces handshake initiations at one per
// Rekey-Timeout (5 s), so a gateway back from a restart would wait up to
// 5 s for us to ask again. Once the peer has been silent for
// fastRetryAfter (two lost probes: not one lost packet), and for no
// longer than fastRetryFor, a failed probe expires the peer's keys first,
// which lifts that pacing: one initiation (148 bytes) every
// fastRetryEvery. That is long enough for an answer over a slow, loaded
// line: expiring drops the handshake still waiting for one. After
// fastRetryFor, wireguard-go's pacing applies again, so a gateway gone for
// good costs a packet every 5 s.
const (
	fastRetryAfter = 2 * time.Second
	fastRetryEvery = 2 * time.Second
	fastRetryFor   = time.Minute
)

// forceHandshake starts a fresh handshake with every peer; expire lifts
// wireguard-go's 5 s pacing (see fastRetryAfter), which otherwise keeps
// this from flooding the gateway. Expiring the keys of a silent peer
// loses nothing: nothing it would decrypt is arriving.
func (c *wgCore) forceHandshake(expire bool) {
	c.mu.Lock()
	dev, peers := c.dev, c.peers
	c.forced++
	c.mu.Unlock()
	if dev == nil {
		return
	}
	for _, pk := range peers {
		if p := dev.LookupPeer(pk); p != nil {
			if expire {
				p.ExpireCurrentKeypairs()
			}
			_ = p.SendHandshakeInitiation(false)
		}
	}
}

func (c *wgCore) startMonitor(ping pinger) {
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.done = make(chan struct{})
	go c.monitor(ctx, ping)
}

// closeDevice stops the monitor and the device. Safe to call repeatedly.
func (c *wgCore) closeDevice() {
	if c.stop != nil {
		c.stop()
		<-c.done
		c.stop = nil
	}
	c.mu.Lock()
	dev := c.dev
	c.dev = nil
	c.mu.Unlock()
	if dev != nil {
		dev.Close()
	}
}

// status builds a Status from the last sample.
func (c *wgCore) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Engine: c.engine, Interface: c.iface, Plan: c.opts.Plan}
	if c.dev == nil {
		st.Health, st.Reason = HealthDown, "the tunnel is not up"
		return st
	}
	s := c.sample
	st.UpSince = c.upSince
	st.LastHandshake = s.lastHandshake
	st.RxBytes, st.TxBytes = s.rx, s.tx
	st.Endpoint = s.endpoint
	st.HandshakeAttempts = int(c.bind.attempts.Load())
	st.ForcedHandshakes = c.forced
	st.LastProbeRTT = c.rtt
	st.Health, st.Reason = deriveHealth(c.opts.Now(), c.upSince, s, st.HandshakeAttempts)
	return st
}

// deriveHealth is the health rule, kept pure for tests.
func deriveHealth(now, upSince time.Time, s sample, attempts int) (Health, string) {
	// wireguard-go retries every Rekey-Timeout (5 s) and gives up after
	// Rekey-Attempt-Time (90 s): 18 attempts.
	gaveUp := attempts >= int(GiveUpAfter/(5*time.Second))
	switch {
	case s.lastHandshake.IsZero() && now.Sub(upSince) < GiveUpAfter && !gaveUp:
		return HealthConnecting, "waiting for the first handshake"
	case s.lastHandshake.IsZero():
		return HealthDown, fmt.Sprintf("no handshake in %s", GiveUpAfter)
	case now.Sub(s.lastHandshake) > RejectAfter:
		return HealthDown, fmt.Sprintf("last handshake %s ago", now.Sub(s.lastHandshake).Round(time.Second))
	case gaveUp:
		return HealthDown, fmt.Sprintf("%d handshake attempts unanswered", attempts)
	case !s.unansweredFrom.IsZero() && now.Sub(s.unansweredFrom) >= StallAfter:
		return HealthStalled, fmt.Sprintf("sent data but received nothing for %s", now.Sub(s.unansweredFrom).Round(time.Second))
	}
	return HealthUp, ""
}

// listenPort is the UDP port the device listens on, 0 when down.
func (c *wgCore) listenPort() uint16 {
	c.mu.Lock()
	dev := c.dev
	c.mu.Unlock()
	if dev == nil {
		return 0
	}
	s, err := dev.IpcGet()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			p, _ := strconv.ParseUint(v, 10, 16)
			return uint16(p)
		}
	}
	return 0
}

// PeerStats is one peer's live state on a device.
type PeerStats struct {
	PublicKey     PublicKey `json:"public_key"`
	Endpoint      string    `json:"endpoint,omitempty"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
}

// setPeer adds p to the live device, or replaces its settings. It is how
// a gateway admits an enrolled client without restarting.
func (c *wgCore) setPeer(ctx context.Context, p Peer) error {
	c.mu.Lock()
	dev := c.dev
	c.mu.Unlock()
	if dev == nil {
		return errors.New("tunnel: not up")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "public_key=%s\n", p.PublicKey.uapiHex())
	if !p.PresharedKey.IsZero() {
		fmt.Fprintf(&b, "preshared_key=%s\n", p.PresharedKey.uapiHex())
	}
	if p.Endpoint != "" {
		ap, err := ResolveEndpoint(ctx, p.Endpoint)
		if err != nil {
			return fmt.Errorf("tunnel: %w", err)
		}
		fmt.Fprintf(&b, "endpoint=%s\n", ap)
	}
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", p.PersistentKeepalive)
	b.WriteString("replace_allowed_ips=true\n")
	for _, a := range p.AllowedIPs {
		fmt.Fprintf(&b, "allowed_ip=%s\n", a.Masked())
	}
	if err := dev.IpcSet(b.String()); err != nil {
		return fmt.Errorf("tunnel: adding peer %s: %w", p.PublicKey.Short(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.peers {
		if k == device.NoisePublicKey(p.PublicKey) {
			return nil
		}
	}
	c.peers = append(c.peers, device.NoisePublicKey(p.PublicKey))
	return nil
}

// removePeer drops a peer from the live device: its sessions and keys go
// with it, so its next packet is ignored.
func (c *wgCore) removePeer(pk PublicKey) error {
	c.mu.Lock()
	dev := c.dev
	c.mu.Unlock()
	if dev == nil {
		return errors.New("tunnel: not up")
	}
	if err := dev.IpcSet(fmt.Sprintf("public_key=%s\nremove=true\n", pk.uapiHex())); err != nil {
		return fmt.Errorf("tunnel: removing peer %s: %w", pk.Short(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range c.peers {
		if k == device.NoisePublicKey(pk) {
			c.peers = append(c.peers[:i], c.peers[i+1:]...)
			break
		}
	}
	return nil
}

// peerStats reads every peer's state from the device.
func (c *wgCore) peerStats() ([]PeerStats, error) {
	c.mu.Lock()
	dev := c.dev
	c.mu.Unlock()
	if dev == nil {
		return nil, errors.New("tunnel: not up")
	}
	s, err := dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("tunnel: reading device state: %w", err)
	}
	var out []PeerStats
	var sec, nsec int64
	flush := func() {
		if len(out) > 0 && (sec != 0 || nsec != 0) {
			out[len(out)-1].LastHandshake = time.Unix(sec, nsec)
		}
		sec, nsec = 0, 0
	}
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "public_key":
			flush()
			var ps PeerStats
			if b, err := hex.DecodeString(v); err == nil && len(b) == KeyLen {
				copy(ps.PublicKey[:], b)
			}
			out = append(out, ps)
		case "endpoint":
			if len(out) > 0 {
				out[len(out)-1].Endpoint = v
			}
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			if len(out) > 0 {
				out[len(out)-1].RxBytes, _ = strconv.ParseUint(v, 10, 64)
			}
		case "tx_bytes":
			if len(out) > 0 {
				out[len(out)-1].TxBytes, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	flush()
	return out, nil
}

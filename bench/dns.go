package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/resolver"
)

// DNSConfig sets up the side-by-side resolver benchmark: every contender
// gets the same synthetic block list and the same query mix, and dnsperf
// runs on the same machine against each in turn.
type DNSConfig struct {
	Dir        string        // scratch directory for lists, configs and logs
	Entries    int           // block list size; default 1,000,000
	LocalNames int           // names answered locally; default 10,000
	Queries    int           // distinct queries in the dnsperf file; default 200,000
	Duration   time.Duration // each dnsperf run; default 20 s
	Runs       int           // runs per contender, the median is kept; default 3
	Threads    int           // dnsperf -T; default 2
	Clients    int           // dnsperf -c; default 10
	// Binaries; a contender whose binary is empty or missing is skipped
	// and the table says why.
	TetherGateway, CoreDNS, Unbound string
	Log                             func(format string, args ...any)
}

// DNSResult is one contender's row.
type DNSResult struct {
	Name       string    `json:"name"`
	Skipped    string    `json:"skipped,omitempty"`
	QPS        float64   `json:"qps"`
	AvgMS      float64   `json:"avg_ms"`
	P99MS      float64   `json:"p99_ms"`
	Lost       int64     `json:"lost"`
	LostPct    float64   `json:"lost_pct"`
	RSSMB      float64   `json:"rss_mb"`
	EmptyRSSMB float64   `json:"empty_rss_mb"`
	BytesEntry float64   `json:"bytes_per_entry"`
	LoadS      float64   `json:"load_s"`
	RunsQPS    []float64 `json:"runs_qps"`
}

func (c *DNSConfig) defaults() {
	if c.Entries == 0 {
		c.Entries = 1_000_000
	}
	if c.LocalNames == 0 {
		c.LocalNames = 10_000
	}
	if c.Queries == 0 {
		c.Queries = 200_000
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if c.Runs == 0 {
		c.Runs = 3
	}
	if c.Threads == 0 {
		c.Threads = 2
	}
	if c.Clients == 0 {
		c.Clients = 10
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
}

func blockedName(i int) string {
	return fmt.Sprintf("b%d-%x.blocked%d.example", i, uint32(i)*2654435761, i%997)
}
func localName(i int) string { return fmt.Sprintf("host%d.corp.test", i) }
func localIP(i int) string   { return fmt.Sprintf("10.%d.%d.%d", 64+i>>16&63, i>>8&255, i&255) }

// writeInputs writes each contender's lists and the dnsperf query file.
// Sizes: n entries blocked, l local names.
func (c *DNSConfig) writeInputs(n int) (map[string]string, error) {
	dir := filepath.Join(c.Dir, fmt.Sprintf("n%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := map[string]string{
		"domains": filepath.Join(dir, "block.domains"),
		"hosts":   filepath.Join(dir, "hosts"),
		"unbound": filepath.Join(dir, "unbound-zones.conf"),
		"queries": filepath.Join(c.Dir, "queries.txt"),
	}
	type w struct {
		f *os.File
		b *bufio.Writer
	}
	open := func(p string) (*w, error) {
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		return &w{f, bufio.NewWriterSize(f, 1<<20)}, nil
	}
	dom, err := open(files["domains"])
	if err != nil {
		return nil, err
	}
	hosts, err := open(files["hosts"])
	if err != nil {
		return nil, err
	}
	ub, err := open(files["unbound"])
	if err != nil {
		return nil, err
	}
	for i := range n {
		name := blockedName(i)
		dom.b.WriteString(name + "\n")
		hosts.b.WriteString("0.0.0.0 " + name + "\n")
		ub.b.WriteString("local-zone: \"" + name + ".\" always_nxdomain\n")
	}
	for i := range c.LocalNames {
		hosts.b.WriteString(localIP(i) + " " + localName(i) + "\n")
		ub.b.WriteString("local-data: \"" + localName(i) + ". 300 IN A " + localIP(i) + "\"\n")
	}
	for _, x := range []*w{dom, hosts, ub} {
		if err := x.b.Flush(); err != nil {
			return nil, err
		}
		x.f.Close()
	}
	// Queries: half blocked names, half local names, shuffled.
	q, err := open(files["queries"])
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range c.Queries {
		if i%2 == 0 && n > 0 {
			q.b.WriteString(blockedName(r.IntN(n)) + " A\n")
		} else {
			q.b.WriteString(localName(r.IntN(c.LocalNames)) + " A\n")
		}
	}
	if err := q.b.Flush(); err != nil {
		return nil, err
	}
	q.f.Close()
	return files, nil
}

// localZone holds the local names, as the gateway's config has them.
func (c *DNSConfig) localZone() resolver.LocalZone {
	z := resolver.LocalZone{Name: "corp.test", Records: make([]string, 0, c.LocalNames)}
	for i := range c.LocalNames {
		z.Records = append(z.Records, fmt.Sprintf("host%d IN A %s", i, localIP(i)))
	}
	return z
}

// gatewayConfig is our contender's: the resolver alone on port, with the
// block list at list and the local names; the API on an ephemeral port.
func (c *DNSConfig) gatewayConfig(port int, list string) gateway.Config {
	gw := gateway.DefaultConfig()
	gw.Name, gw.LogLevel, gw.API.Listen, gw.Measure.STAMPListen = "bench", "warn", "127.0.0.1:0", ""
	gw.DNS = &resolver.Config{Listen: fmt.Sprintf("127.0.0.1:%d", port),
		Lists:      []resolver.ListConfig{{Name: "synthetic", Category: "malware", Format: "domains", Path: list}},
		LocalZones: []resolver.LocalZone{c.localZone()}}
	return gw
}

// contender knows how to start one resolver on a port with n entries.
type contender struct {
	name  string
	bin   string
	start func(port int, files map[string]string) (*exec.Cmd, error)
}

func freePort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

func (c *DNSConfig) contenders() []contender {
	logFile := func(name string) *os.File {
		f, _ := os.Create(filepath.Join(c.Dir, name+".log"))
		return f
	}
	return []contender{
		{name: "tether", bin: c.TetherGateway, start: func(port int, files map[string]string) (*exec.Cmd, error) {
			cfg := filepath.Join(c.Dir, "gateway.yaml")
			_ = os.Remove(cfg) // the empty list's run wrote one
			if err := gateway.WriteConfig(cfg, c.gatewayConfig(port, files["domains"])); err != nil {
				return nil, err
			}
			cmd := exec.Command(c.TetherGateway, "serve", "--config", cfg)
			cmd.Stdout, cmd.Stderr = logFile("tether"), logFile("tether.err")
			return cmd, cmd.Start()
		}},
		{name: "coredns", bin: c.CoreDNS, start: func(port int, files map[string]string) (*exec.Cmd, error) {
			cf := filepath.Join(c.Dir, "Corefile")
			y := fmt.Sprintf(".:%d {\n  bind 127.0.0.1\n  hosts %s {\n    ttl 300\n    no_reverse\n  }\n  cache\n}\n", port, files["hosts"])
			if err := os.WriteFile(cf, []byte(y), 0o644); err != nil {
				return nil, err
			}
			cmd := exec.Command(c.CoreDNS, "-conf", cf)
			cmd.Stdout, cmd.Stderr = logFile("coredns"), logFile("coredns.err")
			return cmd, cmd.Start()
		}},
		{name: "unbound", bin: c.Unbound, start: func(port int, files map[string]string) (*exec.Cmd, error) {
			cf := filepath.Join(c.Dir, "unbound.conf")
			y := fmt.Sprintf(`server:
  interface: 127.0.0.1
  port: %d
  num-threads: 2
  so-reuseport: yes
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "%s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  include: "%s"
remote-control:
  control-enable: no
`, port, c.Dir, files["unbound"])
			if err := os.WriteFile(cf, []byte(y), 0o644); err != nil {
				return nil, err
			}
			cmd := exec.Command(c.Unbound, "-d", "-c", cf)
			cmd.Stdout, cmd.Stderr = logFile("unbound"), logFile("unbound.err")
			return cmd, cmd.Start()
		}},
	}
}

// waitAnswers polls until the server answers a blocked name, and returns
// how long that took from start. exited reports the process ending.
func waitAnswers(ctx context.Context, port int, name string, start time.Time, exited <-chan error) (time.Duration, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	cl := &dns.Client{Timeout: 200 * time.Millisecond}
	for ctx.Err() == nil {
		if _, _, err := cl.Exchange(q, fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return time.Since(start), nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, ctx.Err()
}

// proc is a started contender and its exit.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func watch(cmd *exec.Cmd) *proc {
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p
}

// stop ends the process: SIGTERM (a kill where signals don't exist), then
// a kill after 10 s.
func (p *proc) stop() {
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseFloat(f[0], 64)
			return kb / 1024
		}
	}
	return 0
}

var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	reAvg  = regexp.MustCompile(`Average Latency \(s\):\s+([\d.]+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reSent = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	reLat  = regexp.MustCompile(`^> \S+ \S+ \S+ ([\d.]+)$`)
)

type perfRun struct {
	qps, avg float64
	lost     int64
	sent     int64
	lat      []float64
}

func (c *DNSConfig) dnsperf(ctx context.Context, port int, queries string, verbose bool) (perfRun, error) {
	args := []string{"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries, "-T", strconv.Itoa(c.Threads),
		"-c", strconv.Itoa(c.Clients), "-l", strconv.Itoa(int(c.Duration.Seconds()))}
	if verbose {
		args = append(args, "-v")
	}
	out, err := exec.CommandContext(ctx, "dnsperf", args...).Output()
	if err != nil {
		return perfRun{}, fmt.Errorf("dnsperf: %w", err)
	}
	var r perfRun
	if m := reQPS.FindSubmatch(out); m != nil {
		r.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := reAvg.FindSubmatch(out); m != nil {
		r.avg, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := reLost.FindSubmatch(out); m != nil {
		r.lost, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := reSent.FindSubmatch(out); m != nil {
		r.sent, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if verbose {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if m := reLat.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				r.lat = append(r.lat, v)
			}
		}
	}
	if r.qps == 0 {
		return r, fmt.Errorf("dnsperf printed no rate: %s", bytes.TrimSpace(out))
	}
	return r, nil
}

// RunDNS benchmarks every contender and returns one row each.
func RunDNS(ctx context.Context, cfg DNSConfig) ([]DNSResult, error) {
	cfg.defaults()
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return nil, errors.New("dnsperf is not installed (make deps installs it)")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	full, err := cfg.writeInputs(cfg.Entries)
	if err != nil {
		return nil, err
	}
	empty, err := cfg.writeInputs(0)
	if err != nil {
		return nil, err
	}
	empty["queries"] = full["queries"]
	var results []DNSResult
	for _, ct := range cfg.contenders() {
		res := DNSResult{Name: ct.name}
		if ct.bin == "" {
			res.Skipped = "binary not given"
			results = append(results, res)
			continue
		}
		if _, err := os.Stat(ct.bin); err != nil {
			res.Skipped = "not installed: " + ct.bin
			results = append(results, res)
			continue
		}
		if err := cfg.runOne(ctx, ct, full, empty, &res); err != nil {
			res.Skipped = err.Error()
		}
		results = append(results, res)
	}
	return results, nil
}

func (cfg *DNSConfig) runOne(ctx context.Context, ct contender, full, empty map[string]string, res *DNSResult) error {
	// Baseline memory with an empty list.
	port, err := freePort()
	if err != nil {
		return err
	}
	start := time.Now()
	cmd, err := ct.start(port, empty)
	if err != nil {
		return err
	}
	p := watch(cmd)
	if _, err := waitAnswers(ctx, port, localName(0), start, p.done); err != nil {
		p.stop()
		return fmt.Errorf("did not start with an empty list: %w (see %s.err.log)", err, ct.name)
	}
	res.EmptyRSSMB = rssMB(cmd.Process.Pid)
	p.stop()

	port, err = freePort()
	if err != nil {
		return err
	}
	start = time.Now()
	cmd, err = ct.start(port, full)
	if err != nil {
		return err
	}
	p = watch(cmd)
	defer p.stop()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	load, err := waitAnswers(lctx, port, blockedName(cfg.Entries-1), start, p.done)
	cancel()
	if err != nil {
		return fmt.Errorf("did not start with the full list: %w", err)
	}
	res.LoadS = load.Seconds()
	cfg.Log("%s: loaded %d entries in %.2f s", ct.name, cfg.Entries, res.LoadS)
	var runs []perfRun
	for i := range cfg.Runs {
		r, err := cfg.dnsperf(ctx, port, full["queries"], false)
		if err != nil {
			return err
		}
		cfg.Log("%s: run %d: %.0f qps, avg %.3f ms, lost %d", ct.name, i+1, r.qps, r.avg*1000, r.lost)
		runs = append(runs, r)
		res.RunsQPS = append(res.RunsQPS, r.qps)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].qps < runs[j].qps })
	med := runs[len(runs)/2]
	res.QPS, res.AvgMS, res.Lost = med.qps, med.avg*1000, med.lost
	if med.sent > 0 {
		res.LostPct = 100 * float64(med.lost) / float64(med.sent)
	}
	// Latency percentiles from one more run with per-query output.
	lr, err := cfg.dnsperf(ctx, port, full["queries"], true)
	if err == nil && len(lr.lat) > 0 {
		slices.Sort(lr.lat)
		res.P99MS = lr.lat[len(lr.lat)*99/100] * 1000
	}
	res.RSSMB = rssMB(cmd.Process.Pid)
	res.BytesEntry = (res.RSSMB - res.EmptyRSSMB) * 1024 * 1024 / float64(cfg.Entries)
	return nil
}

// FormatDNS renders the table, with each contender's qps relative to the
// first (ours).
func FormatDNS(cfg DNSConfig, rs []DNSResult) string {
	cfg.defaults()
	var b strings.Builder
	fmt.Fprintf(&b, "DNS resolvers, %d blocked entries + %d local names; dnsperf -T %d -c %d -l %d, median of %d runs; half the queries blocked, half local\n\n",
		cfg.Entries, cfg.LocalNames, cfg.Threads, cfg.Clients, int(cfg.Duration.Seconds()), cfg.Runs)
	b.WriteString("| resolver | qps | vs tether | avg ms | p99 ms | lost | RSS MB | bytes/entry | load s |\n|---|---|---|---|---|---|---|---|---|\n")
	base := 0.0
	for _, r := range rs {
		if r.Name == "tether" {
			base = r.QPS
		}
	}
	for _, r := range rs {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s |||||||\n", r.Name, r.Skipped)
			continue
		}
		rel := "—"
		if base > 0 {
			rel = fmt.Sprintf("%.2fx", r.QPS/base)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.3f | %.3f | %d (%.3f%%) | %.0f | %.0f | %.2f |\n",
			r.Name, r.QPS, rel, r.AvgMS, r.P99MS, r.Lost, r.LostPct, r.RSSMB, r.BytesEntry, r.LoadS)
	}
	return b.String()
}

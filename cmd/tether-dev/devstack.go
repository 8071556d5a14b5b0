package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetherwfh/tether/client"
	"github.com/tetherwfh/tether/client/localapi"
	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
	"github.com/tetherwfh/tether/gateway/resolver"
)

// Timeouts of the stack.
const (
	// startTimeout bounds each component's start; both start in well
	// under a second on loopback, so this only catches a broken build.
	startTimeout = 15 * time.Second
	// stopTimeout is how long a component gets to exit after SIGTERM
	// before it is killed.
	stopTimeout = 5 * time.Second
	// watchInterval paces the status watch while the stack runs.
	watchInterval = time.Second
)

// Options configure a run.
type Options struct {
	// StateDir holds the generated configs, the logs and the socket.
	StateDir string
	// BinDir holds tether-gateway and tetherd; empty means the directory
	// of the running executable.
	BinDir string
	// Out receives the step-by-step report.
	Out io.Writer
	// Once stops the stack after the first status instead of waiting for
	// ctx (for tests and CI).
	Once bool
	// Format renders a daemon status for Out.
	Format func(localapi.Status, time.Time) string
}

// Stack is a running gateway and daemon.
type Stack struct {
	opts       Options
	gatewayURL string
	pin        string        // the gateway certificate's pin
	wgPort     uint16        // the gateway's WireGuard port
	api        *gwapi.Client // trusts the gateway by its pin, with the admin token
	stampPort  uint16
	socket     string
	procs      []*proc
	dnsAddr    string
	gwConfig   string
	dir        string
	adminToken string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// Run starts the stack, prints its status, then waits for ctx (or not,
// with Once) and stops it, printing each step.
func Run(ctx context.Context, opts Options) (err error) {
	s := &Stack{opts: opts}
	defer func() {
		if serr := s.stop(); err == nil {
			err = serr
		}
	}()
	if err := s.start(ctx); err != nil {
		return err
	}
	if err := s.story(ctx); err != nil {
		return err
	}
	lc := &localapi.Client{Socket: s.socket}
	st, err := lc.Status(ctx)
	if err != nil {
		return err
	}
	s.printf("\n%s\n", strings.TrimRight(opts.Format(st, time.Now()), "\n"))
	if opts.Once {
		return nil
	}
	s.printf("\nRunning. `./bin/tether status --socket %s` shows the status from another shell; Ctrl-C stops.\n", s.socket)
	return s.watch(ctx, st.State)
}

// devPhishingList is the embedded default's block list: names the demo
// resolves to show a block, in two list formats' worth of rules.
const devPhishingList = "# Tether's development block list\nphishing.test\n*.malware.test\n"

func (s *Stack) printf(format string, args ...any) { fmt.Fprintf(s.opts.Out, format, args...) }

func (s *Stack) start(ctx context.Context) error {
	o := s.opts
	if o.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the binaries: %w", err)
		}
		o.BinDir = filepath.Dir(exe)
	}
	dir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}

	// 1. Configuration, regenerated each run so a stale one never bites.
	gwCfg := gateway.DefaultConfig()
	udpPort, err := freeUDPPort()
	if err != nil {
		return err
	}
	gwCfg.Name, gwCfg.API.Listen = "dev-gateway", fmt.Sprintf("127.0.0.1:%d", port)
	gwCfg.Measure.STAMPListen = fmt.Sprintf("127.0.0.1:%d", udpPort)
	s.stampPort = uint16(udpPort)
	// The filtering resolver: a block list, the company zone, and no
	// upstream, since the embedded default uses no external service.
	dnsPort, err := freeUDPPort()
	if err != nil {
		return err
	}
	listPath := filepath.Join(dir, "phishing.list")
	if err := os.WriteFile(listPath, []byte(devPhishingList), 0o644); err != nil {
		return err
	}
	s.dnsAddr = fmt.Sprintf("127.0.0.1:%d", dnsPort)
	gwCfg.DNS = &resolver.Config{
		Listen: s.dnsAddr,
		Lists:  []resolver.ListConfig{{Name: "phishing", Category: "phishing", Format: "domains", Path: listPath}},
		// intranet.corp.test is the gateway's own page inside the tunnel.
		LocalZones: []resolver.LocalZone{{Name: "corp.test", Records: []string{"intranet IN A " + devTunnelAddr.Addr().String()}}},
	}
	// The names a client's filter check asks: one the lists block, one
	// the company serves.
	gwCfg.Diagnostics = gateway.DiagnosticsConfig{Canary: "login.phishing.test", ProbeName: "intranet.corp.test"}
	if err := s.configureWireGuard(dir, &gwCfg); err != nil {
		return err
	}
	// Fresh secrets, as `tether-gateway init` writes them: the WireGuard
	// key, the admin and metrics tokens, and the HTTPS certificate every
	// client here trusts by its pin.
	for _, f := range gateway.SecretFiles(dir).Paths() {
		_ = os.Remove(f)
	}
	sec, err := gateway.WriteSecrets(dir, []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		return err
	}
	sec.Apply(&gwCfg)
	s.pin, s.adminToken = sec.Pin, sec.AdminToken
	s.dir = dir
	gwPath := filepath.Join(dir, "gateway.yaml")
	s.gwConfig = gwPath
	_ = os.Remove(gwPath)
	if err := gateway.WriteConfig(gwPath, gwCfg); err != nil {
		return err
	}
	s.gatewayURL = "https://" + gwCfg.API.Listen
	if s.api, err = gwapi.New(gwapi.Config{BaseURL: s.gatewayURL, Pin: s.pin, AdminToken: s.adminToken}); err != nil {
		return err
	}
	s.socket = filepath.Join(dir, "tetherd.sock")
	// The daemon keeps its enrollment under the state directory, and its
	// diagnosis checks the dev gateway's resolver as this "home's": the
	// embedded default asks no outside service.
	dCfg := client.Config{Gateway: s.gatewayURL, GatewayPin: s.pin, Socket: s.socket, CheckInterval: 2 * time.Second,
		StateDir: filepath.Join(dir, "tetherd"), Resolvers: []string{s.dnsAddr}, CaptiveURL: "off"}
	_ = os.RemoveAll(dCfg.StateDir) // a fresh enrollment each run, like the gateway's store
	dPath := filepath.Join(dir, "tetherd.yaml")
	if err := client.WriteConfig(dPath, dCfg); err != nil {
		return err
	}
	s.printf("[1/8] wrote a development configuration to %s (gateway.yaml, tetherd.yaml)\n", dir)
	s.printf("      the API's self-signed certificate is pinned by clients as %s\n", s.pin)

	// 2. The gateway, then wait until it is ready.
	gw, err := s.spawn(ctx, "tether-gateway", filepath.Join(o.BinDir, "tether-gateway"), dir, "serve", "--config", gwPath)
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx, gw, func(ctx context.Context) error { _, err := s.api.Ready(ctx); return err }); err != nil {
		return err
	}
	s.printf("[2/8] started tether-gateway (pid %d): API on %s, log %s\n", gw.cmd.Process.Pid, s.gatewayURL, gw.log)

	// 3. The daemon, then wait until its local API answers.
	d, err := s.spawn(ctx, "tetherd", filepath.Join(o.BinDir, "tetherd"), dir, "--config", dPath)
	if err != nil {
		return err
	}
	lc := &localapi.Client{Socket: s.socket}
	if err := s.waitReady(ctx, d, func(ctx context.Context) error { _, err := lc.Status(ctx); return err }); err != nil {
		return err
	}
	s.printf("[3/8] started tetherd (pid %d): local API on %s, log %s\n", d.cmd.Process.Pid, s.socket, d.log)
	return nil
}

func (s *Stack) spawn(ctx context.Context, name, bin, dir string, args ...string) (*proc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (build it first: make build)", name, err)
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	s.procs = append(s.procs, p)
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits or the start
// timeout passes; failures quote the end of the process's log.
func (s *Stack) waitReady(ctx context.Context, p *proc, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err // stop() reads it again
			return fmt.Errorf("%s exited during start (%v); its log says:\n%s", p.name, err, tail(p.log))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w; its log says:\n%s", p.name, startTimeout, last, tail(p.log))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// watch prints the status again whenever the daemon's state changes, until
// ctx is done or a component dies.
func (s *Stack) watch(ctx context.Context, last localapi.State) error {
	lc := &localapi.Client{Socket: s.socket}
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		for _, p := range s.procs {
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("%s exited unexpectedly (%v); its log says:\n%s", p.name, err, tail(p.log))
			default:
			}
		}
		select {
		case <-ctx.Done():
			s.printf("\nStopping.\n")
			return nil
		case <-t.C:
		}
		if st, err := lc.Status(ctx); err == nil && st.State != last {
			s.printf("\n%s", s.opts.Format(st, time.Now()))
			last = st.State
		}
	}
}

// stop ends the components in reverse order of start: the daemon, then
// the gateway.
func (s *Stack) stop() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case err := <-p.done:
			s.printf("%s had already exited (%v)\n", p.name, err)
			continue
		default:
		}
		_ = terminate(p.cmd.Process)
		select {
		case err := <-p.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("%s exited with %w; log %s", p.name, err, p.log))
			}
			s.printf("stopped %s\n", p.name)
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.name, stopTimeout))
		}
	}
	s.procs = nil
	return errors.Join(errs...)
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeUDPPort asks the kernel for a free loopback UDP port.
func freeUDPPort() (int, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free UDP port: %w", err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// tail returns the last lines of a log file, indented.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/proxy"

	"github.com/tetherwfh/tether/tunnel"
	"github.com/tetherwfh/tether/tunnel/tunneltest"
)

func TestTunnelKeygenNeverPrintsTheKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "private.key")
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	require.Equal(t, 0, Main(context.Background(), []string{"tunnel", "keygen", "--out", key}, env), errb.String())
	secret, err := os.ReadFile(key)
	require.NoError(t, err)
	assert.NotContains(t, out.String(), strings.TrimSpace(string(secret)))
	st, _ := os.Stat(key)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	pub := strings.TrimSpace(out.String())

	out.Reset()
	require.Equal(t, 0, Main(context.Background(), []string{"tunnel", "pubkey", "--key", key}, env))
	assert.Equal(t, pub, strings.TrimSpace(out.String()))
	assert.Equal(t, 1, Main(context.Background(), []string{"tunnel", "keygen", "--out", key}, env), "never overwrites")
}

func TestTunnelPlan(t *testing.T) {
	dir := t.TempDir()
	k, _ := tunnel.GeneratePrivateKey()
	g, _ := tunnel.GeneratePrivateKey()
	conf := filepath.Join(dir, "wg0.conf")
	cfg := "[Interface]\nPrivateKey = " + keyB64(t, k) + "\nAddress = 10.99.0.2/32\nDNS = 10.99.0.1\n\n[Peer]\nPublicKey = " + g.Public().String() + "\nAllowedIPs = 0.0.0.0/0\nEndpoint = 198.18.2.2:51820\n"
	require.NoError(t, os.WriteFile(conf, []byte(cfg), 0o600))
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	require.Equal(t, 0, Main(context.Background(), []string{"tunnel", "plan", "-c", conf, "--mode", "split", "--company", "10.77.0.0/16"}, env), errb.String())
	var plan tunnel.Plan
	require.NoError(t, json.Unmarshal(out.Bytes(), &plan))
	assert.Equal(t, tunnel.ModeSplit, plan.Mode)
	assert.Len(t, plan.Routes, 2)

	errb.Reset()
	require.NoError(t, os.WriteFile(conf, []byte("[Interface]\nBogus = 1\n"), 0o600))
	assert.Equal(t, 1, Main(context.Background(), []string{"tunnel", "plan", "-c", conf}, env))
	assert.Contains(t, errb.String(), "wg0.conf:2: [Interface] bogus: unknown key")
}

// keyB64 writes k to a file and reads back the base64, the only way out.
func keyB64(t *testing.T, k tunnel.PrivateKey) string {
	p := filepath.Join(t.TempDir(), "k")
	require.NoError(t, tunnel.WriteKeyFile(p, k))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestTunnelUpStopsOnSIGTERMAfterRevocation runs `tether tunnel up
// --engine userspace` as a process against a gateway in this test, opens
// an endless download through its SOCKS5 proxy, and has the gateway revoke
// the client mid-transfer: nothing will ever arrive from the tunnel
// again. SIGTERM must still stop the process within 3 s. It used to
// ignore SIGTERM and Ctrl-C for good: Down waited on the proxy's copy
// blocked on the tunnel side.
func TestTunnelUpStopsOnSIGTERMAfterRevocation(t *testing.T) {
	bin := buildTether(t)
	gw := tunneltest.NewGateway(t, tunnel.UserspaceOptions{})
	gwAddr := tunneltest.GatewayAddr
	ln, err := gw.Net().ListenTCPAddrPort(netip.AddrPortFrom(gwAddr, 9000))
	require.NoError(t, err)
	tunneltest.ServeEndless(t, ln)

	conf := filepath.Join(t.TempDir(), "wg0.conf")
	require.NoError(t, tunnel.WriteConfigFile(conf, gw.ClientConfig()))
	cmd := exec.Command(bin, "tunnel", "up", "-c", conf, "--engine", "userspace",
		"--socks", "127.0.0.1:0", "--http", "", "--probe", gwAddr.String())
	var stderr, out syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var waitErr error
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitErr = cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	lines := bufio.NewScanner(io.TeeReader(stdout, &out))
	socks := ""
	for socks == "" && lines.Scan() {
		if m := regexp.MustCompile(`SOCKS5 proxy on (\S+?)(,|$)`).FindStringSubmatch(lines.Text()); m != nil {
			socks = m[1]
		}
	}
	require.NotEmpty(t, socks, "no SOCKS5 address printed; stdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
	go func() { _, _ = io.Copy(&out, stdout) }()

	d, err := proxy.SOCKS5("tcp", socks, nil, proxy.Direct)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", netip.AddrPortFrom(gwAddr, 9000).String())
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.CopyN(io.Discard, c, 1<<20)
	require.NoError(t, err, "the download runs")
	_ = c.SetReadDeadline(time.Time{})
	var got atomic.Int64
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()

	require.NoError(t, gw.RemovePeer(gw.ClientKey.Public()), "the gateway revokes the client")
	// Wait until what the tunnel held has drained: the proxy then waits on
	// the tunnel side, where the hang was.
	for last, since := got.Load(), time.Now(); time.Since(since) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if n := got.Load(); n != last {
			last, since = n, time.Now()
		}
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, "stdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
		assert.Contains(t, out.String(), "tunnel down")
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGQUIT) // Go prints every goroutine's stack
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("tether tunnel up did not exit within 3 s of SIGTERM; stderr:\n%s", stderr.String())
	}
}

// buildTether builds the tether command into a temporary directory.
func buildTether(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the binary under test")
	bin := filepath.Join(t.TempDir(), "tether")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/tetherwfh/tether/cmd/tether").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// syncBuffer is a bytes.Buffer that a process's output goroutine writes
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

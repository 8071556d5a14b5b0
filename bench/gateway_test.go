package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/gateway"
	"github.com/tetherwfh/tether/gateway/gwapi"
)

func TestStartEmbeddedServesTheAPIScenario(t *testing.T) {
	cfg := gateway.DefaultConfig()
	cfg.Name, cfg.API.Listen, cfg.Measure.STAMPListen = "bench", "127.0.0.1:0", ""
	g, err := StartEmbedded(context.Background(), cfg, gateway.Options{})
	require.NoError(t, err)
	info, err := g.API.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "bench", info.Name)
	assert.Zero(t, g.PID, "in this process")
	r, err := RunAPI(context.Background(), APIConfig{BaseURL: g.URL, Concurrency: 2, Duration: 200 * time.Millisecond})
	require.NoError(t, err)
	assert.Positive(t, r.Requests)
	assert.Zero(t, r.Errors)
	require.NoError(t, g.Stop())
}

// TestRunPeersAgainstAGatewayProcess runs the peers scenario, small,
// against a tether-gateway built for the test: the process harness, the
// enrollments, a tunnel and a revocation.
func TestRunPeersAgainstAGatewayProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tether-gateway; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "tether-gateway")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tetherwfh/tether/cmd/tether-gateway").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := RunPeers(ctx, PeersConfig{GatewayBin: bin, Dir: t.TempDir(), Enrolled: 3, Connected: 1})
	require.NoError(t, err)
	assert.Equal(t, 3, r.Enrolled)
	assert.Positive(t, r.RSSIdleMB, "the process's memory is read")
	assert.Positive(t, r.EnrollMedianMS)
	assert.Positive(t, r.RevokeCutMS, "the revoked client was cut")
	t.Log(r)
}

func TestStartProcessSaysWhyTheGatewayDidNotStart(t *testing.T) {
	cfg := gateway.DefaultConfig()
	cfg.API.Listen = "127.0.0.1:1"
	_, err := StartProcess(context.Background(), "/bin/false", t.TempDir(), cfg, gwapi.Config{BaseURL: "http://127.0.0.1:1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited during start")
}

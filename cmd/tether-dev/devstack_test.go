package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tetherwfh/tether/client/localapi"
)

func format(st localapi.Status, _ time.Time) string {
	return fmt.Sprintf("state=%s gateway=%s reachable=%v\n", st.State, st.Gateway.Name, st.Gateway.Reachable)
}

// TestRunStartsAndStopsTheRealBinaries builds tether-gateway and tetherd
// and runs the embedded default against them, as `make run` does.
func TestRunStartsAndStopsTheRealBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries; skipped with -short")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "github.com/tetherwfh/tether/cmd/tether-gateway", "github.com/tetherwfh/tether/cmd/tetherd")
	bout, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", bout)

	state := filepath.Join(t.TempDir(), "state")
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, Run(ctx, Options{StateDir: state, BinDir: bin, Out: &buf, Once: true, Format: format}))
	t.Log(buf.String())
	out := buf.String()
	for _, want := range []string{
		"[1/8] wrote a development configuration",
		"[2/8] started tether-gateway",
		"[3/8] started tetherd",
		"[4/8] tether enroll: tetherd enrolled this machine",
		"[5/8] tether diag: tetherd measured the line",
		"throughput  download",
		"[6/8] tether up: tetherd decided a ",
		`[7/8] http://intranet.corp.test/ through the tunnel: "Company intranet"`,
		"[8/8] login.phishing.test    NXDOMAIN (EDE 15: blocked (phishing)",
		"[8/8] intranet.corp.test     10.99.0.1",
	} {
		assert.Contains(t, out, want)
	}
	assert.Regexp(t, `connected [0-9.]+ s after up \(userspace engine\)`, out)
	assert.Contains(t, out, "… download:", "the diagnosis's progress, from the event stream")
	// The daemon's status, as the daemon reports it, after the story.
	assert.Contains(t, out, "\nstate=connected gateway=dev-gateway", "the daemon's status is printed")
	assert.Contains(t, buf.String(), "stopped tetherd\nstopped tether-gateway\n", "the daemon stops first")

	_, err = os.Stat(filepath.Join(state, "tetherd.sock"))
	assert.ErrorIs(t, err, os.ErrNotExist, "tetherd removed its socket: it shut down cleanly")
	for _, f := range []string{"gateway.yaml", "tetherd.yaml", "tether-gateway.log", "tetherd.log", "tetherd/enrollment.json", "tetherd/device.key"} {
		fi, err := os.Stat(filepath.Join(state, f))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	log, err := os.ReadFile(filepath.Join(state, "tetherd.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "tetherd stopped")
}

func TestRunExplainsMissingBinaries(t *testing.T) {
	var buf bytes.Buffer
	err := Run(context.Background(), Options{StateDir: t.TempDir(), BinDir: t.TempDir(), Out: &buf, Once: true, Format: format})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "build it first")
}

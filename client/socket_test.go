//go:build unix

package client

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runBriefly runs a daemon on sock and returns Run's error. A daemon
// that starts is stopped after a moment: Run then returns nil, which
// these tests treat as the failure it is.
func runBriefly(t *testing.T, sock string) error {
	t.Helper()
	d, err := New(Config{Gateway: "http://127.0.0.1:9", Socket: sock}, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return d.Run(ctx)
}

// TestSocketPathRefusesWhatIsNotASocket: whatever sits at the socket path
// and is not a socket stays as it was, and the daemon refuses to start
// with an error that says so. The daemon used to delete a regular file or
// an empty directory there, and to replace a symlink.
func TestSocketPathRefusesWhatIsNotASocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		// put creates the object at path and returns a check that it is
		// intact.
		put func(t *testing.T, path string) func(t *testing.T)
	}{
		{"regular file", func(t *testing.T, path string) func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte("someone's data\n"), 0o644))
			return func(t *testing.T) {
				b, err := os.ReadFile(path)
				require.NoError(t, err, "the file is still there")
				assert.Equal(t, "someone's data\n", string(b))
				fi, err := os.Lstat(path)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), fi.Mode())
			}
		}},
		{"empty directory", func(t *testing.T, path string) func(t *testing.T) {
			require.NoError(t, os.Mkdir(path, 0o755))
			return func(t *testing.T) {
				fi, err := os.Lstat(path)
				require.NoError(t, err, "the directory is still there")
				assert.True(t, fi.IsDir())
			}
		}},
		{"symlink to a file elsewhere", func(t *testing.T, path string) func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "passwd")
			require.NoError(t, os.WriteFile(target, []byte("root:x:0:0\n"), 0o644))
			require.NoError(t, os.Chmod(target, 0o644))
			require.NoError(t, os.Symlink(target, path))
			return func(t *testing.T) {
				fi, err := os.Lstat(path)
				require.NoError(t, err, "the symlink is still there")
				assert.Equal(t, os.ModeSymlink, fi.Mode().Type())
				fi, err = os.Stat(target)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), fi.Mode(), "the target's mode is unchanged")
				b, err := os.ReadFile(target)
				require.NoError(t, err)
				assert.Equal(t, "root:x:0:0\n", string(b))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "tetherd.sock")
			intact := tc.put(t, sock)
			err := runBriefly(t, sock)
			require.Error(t, err, "the daemon started over the %s", tc.name)
			assert.ErrorContains(t, err, "not a socket")
			intact(t)
		})
	}
}

// TestSocketDirectoryWritableByOthersIsRefused: in a directory others can
// write, anyone could swap the socket for their own, so the daemon does
// not listen there.
func TestSocketDirectoryWritableByOthersIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Chmod(dir, 0o777))
	err := runBriefly(t, filepath.Join(dir, "tetherd.sock"))
	require.Error(t, err)
	assert.ErrorContains(t, err, "writable by others")
}

// TestSocketIsCreatedWithItsModeAndNothingElse: the socket has socketMode,
// and the daemon leaves nothing else in its directory.
func TestSocketIsCreatedWithItsModeAndNothingElse(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "tetherd.sock")
	startDaemon(t, Config{Gateway: "http://127.0.0.1:9", Socket: sock})
	fi, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, fi.Mode().Type())
	assert.Equal(t, os.FileMode(socketMode), fi.Mode().Perm())
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"tetherd.sock"}, names)
}

// TestSocketRemovedAtExitOnlyIfOurs: at exit the daemon removes its
// socket, but not a file that has taken its place since.
func TestSocketRemovedAtExitOnlyIfOurs(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetherd.sock")
	d, err := New(Config{Gateway: "http://127.0.0.1:9", Socket: sock}, Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon did not start: %v", err)
	}
	// Another daemon's socket now sits at the path (its operator moved
	// ours away).
	require.NoError(t, os.Rename(sock, sock+".old"))
	other, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer other.Close()
	cancel()
	require.NoError(t, <-done)
	fi, err := os.Lstat(sock)
	require.NoError(t, err, "the other socket is still there")
	assert.Equal(t, os.ModeSocket, fi.Mode().Type())
	c, err := net.Dial("unix", sock)
	require.NoError(t, err, "and still answers")
	c.Close()
}

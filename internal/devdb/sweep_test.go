//go:build unix

package devdb

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A killed test process leaves its cluster's directory behind; the next
// one removes it once it is old and no server runs in it, and leaves
// alone a young one (another process may be creating it) and one whose
// server is alive.
func TestSweepStaleRemovesOnlyDeadOldClusters(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	mk := func(name, pid string, mtime time.Time) string {
		root := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Join(root, "data"), 0o755))
		if pid != "" {
			require.NoError(t, os.WriteFile(filepath.Join(root, "data", "postmaster.pid"), []byte(pid+"\n/data\n"), 0o600))
		}
		require.NoError(t, os.Chtimes(filepath.Join(root, "data"), mtime, mtime))
		require.NoError(t, os.Chtimes(root, mtime, mtime))
		return root
	}
	deadNoPid := mk("txkit-pg-1", "", old)
	deadPid := mk("txkit-pg-2", "999999999", old)
	alive := mk("txkit-pg-3", strconv.Itoa(os.Getpid()), old)
	young := mk("txkit-pg-4", "", time.Now())
	other := mk("something-else", "", old)
	restarting := mk("txkit-pg-5", "", old) // its server stopped a moment ago
	require.NoError(t, os.WriteFile(filepath.Join(restarting, "server.log"), []byte("shut down\n"), 0o600))
	require.NoError(t, os.Chtimes(restarting, old, old))

	require.Equal(t, 2, sweepStale(dir, time.Now()))
	for _, gone := range []string{deadNoPid, deadPid} {
		_, err := os.Stat(gone)
		require.ErrorIs(t, err, os.ErrNotExist, gone)
	}
	for _, kept := range []string{alive, young, other, restarting} {
		_, err := os.Stat(kept)
		require.NoError(t, err, kept)
	}
}

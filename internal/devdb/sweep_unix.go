//go:build unix

package devdb

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// staleAge is how long a throwaway cluster's directory must have been
// left untouched, with no server running in it, before sweepStale removes
// it: longer than any initdb, start or stop, so that a cluster another
// process is creating or restarting right now is left alone.
const staleAge = 10 * time.Minute

// sweepStale removes the directories of throwaway clusters that a test
// process killed before its cleanup left behind in dir: those older than
// staleAge whose server is not running (no postmaster.pid, or one naming
// a process that is gone). It reports how many it removed.
func sweepStale(dir string, now time.Time) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "txkit-pg-") {
			continue
		}
		root := filepath.Join(dir, e.Name())
		if !idleSince(root, now.Add(-staleAge)) || serverRunning(filepath.Join(root, "data")) {
			continue
		}
		if os.RemoveAll(root) == nil {
			removed++
		}
	}
	return removed
}

// idleSince reports whether nothing in root was written after t: not the
// directory itself, and not the server's log, which a server writes to
// when it starts and stops (a test may have stopped its server for a
// moment).
func idleSince(root string, t time.Time) bool {
	for _, p := range []string{root, filepath.Join(root, "server.log"), filepath.Join(root, "data")} {
		info, err := os.Stat(p)
		if err == nil && info.ModTime().After(t) {
			return false
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false
		}
	}
	return true
}

// serverRunning reports whether the postmaster.pid in dataDir names a
// live process. A file that cannot be read for another reason than its
// absence counts as running: nothing is removed on a guess.
func serverRunning(dataDir string) bool {
	f, err := os.Open(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	if !s.Scan() {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s.Text()))
	if err != nil || pid <= 0 {
		return false
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

//go:build linux

package patroni

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSwitchoverOnStopAndClose: stopping the leader's Patroni (SIGTERM)
// hands the leader key over at once, and the other node is promoted and
// takes writes through the cluster's URL; Close then leaves no directory
// and no Patroni or PostgreSQL process behind.
func TestSwitchoverOnStopAndClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c := Start(t, Options{})
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, leader.URL(), "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")

	begin := time.Now()
	leader.Stop()
	next, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatalf("%v\n%s", err, c.Logs())
	}
	t.Logf("after the leader's Patroni was stopped, %s was promoted in %v", next.Name(), time.Since(begin).Round(time.Millisecond))
	if next == leader {
		t.Fatal("the stopped node is still the leader")
	}
	if err := query(ctx, c.URL(), "INSERT INTO t VALUES (2) RETURNING id", new(int)); err != nil {
		t.Fatalf("a write through the cluster's URL after the switchover: %v\n%s", err, c.Logs())
	}
	var n int
	if err := query(ctx, next.URL(), "SELECT count(*) FROM t", &n); err != nil || n != 2 {
		t.Fatalf("the new leader has %d rows (%v), want 2\n%s", n, err, c.Logs())
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Close left %s behind (stat: %v)", c.dir, err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if strings.HasPrefix(cwd, c.dir) || strings.Contains(string(cmdline), c.dir) {
			t.Errorf("process %s still runs in or for %s after Close: %q", filepath.Base(p), c.dir, cmdline)
		}
	}
	for _, node := range c.nodes {
		if conn, err := pgx.Connect(ctx, node.URL()); err == nil {
			_ = conn.Close(ctx)
			t.Errorf("%s still accepts connections after Close", node.Name())
		}
	}
}

func mustExec(ctx context.Context, t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

//go:build linux

package patroni_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/patroni"
	"github.com/txkit/txkit/tests/pgtest"
)

// TestFailover: Patroni elects a leader that takes writes and a replica
// that replays them; after the leader crashes (Patroni and PostgreSQL
// killed), Patroni promotes the replica, which has the old leader's rows
// and takes new writes; the crashed node comes back as a replica of the
// new leader.
func TestFailover(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	begin := time.Now()
	c := patroni.Start(t, patroni.Options{})
	t.Logf("Patroni cluster up (leader and a streaming replica) in %v", time.Since(begin).Round(time.Millisecond))

	leader, err := c.WaitLeader(ctx)
	require.NoError(t, err)
	var replica *patroni.Node
	for _, n := range c.Nodes() {
		if n != leader {
			replica = n
		}
	}
	exec(ctx, t, leader.URL(), "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	waitRows(ctx, t, replica.URL(), 1)

	begin = time.Now()
	leader.Kill()
	next, err := c.WaitLeader(ctx)
	require.NoError(t, err, c.Logs())
	t.Logf("after the leader was killed, %s was promoted in %v (TTL %ds)", next.Name(), time.Since(begin).Round(time.Millisecond), patroni.TTL)
	require.Same(t, replica, next)
	exec(ctx, t, next.URL(), "INSERT INTO t VALUES (2)")
	waitRows(ctx, t, c.URL(), 2)

	begin = time.Now()
	require.NoError(t, leader.Start())
	require.NoError(t, leader.WaitStreaming(ctx), c.Logs())
	t.Logf("the killed node rejoined as a replica in %v", time.Since(begin).Round(time.Millisecond))
	waitRows(ctx, t, leader.URL(), 2)
}

func exec(ctx context.Context, t *testing.T, url, sql string) {
	t.Helper()
	conn := pgtest.Connect(t, url)
	_, err := conn.Exec(ctx, sql)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
}

// waitRows waits until table t has n rows on the server url reaches
// (a replica catching up), failing t if ctx ends first.
func waitRows(ctx context.Context, t *testing.T, url string, n int) {
	t.Helper()
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			var got int
			err = conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&got)
			_ = conn.Close(ctx)
			if err == nil && got == n {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("table t never had %d rows (last error: %v)", n, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// replicas returns the stats of the replicas.
func replicaStats(c *cluster.Cluster) []cluster.NodeStats {
	var out []cluster.NodeStats
	for _, n := range c.Nodes() {
		if n.Role == cluster.Replica {
			out = append(out, n)
		}
	}
	return out
}

// The lag bound does not grow while the primary is idle (where
// now() - pg_last_xact_replay_timestamp() does); reads are spread over the
// replicas that qualify; and without checks the bound keeps growing until
// the replicas leave routing.
func TestLagBoundWhileIdleSpreadAndWithoutChecks(t *testing.T) {
	t.Parallel()
	r := replicated(t, 2)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: 500 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	for _, rep := range r.Replicas {
		require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, rep))
	}

	// Idle for longer than MaxLag: the replicas stay within it.
	time.Sleep(time.Second)
	eventually(t, "both replicas are routable with the primary idle", func() bool {
		rs := replicaStats(c)
		return len(rs) == 2 && rs[0].Routable && rs[1].Routable
	})
	conn, err := pgx.Connect(ctx, r.Replicas[0].URL())
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var sinceReplay time.Duration
	require.NoError(t, conn.QueryRow(ctx, "SELECT now() - pg_last_xact_replay_timestamp()").Scan(&sinceReplay))
	require.Greater(t, sinceReplay, 500*time.Millisecond, "the replay timestamp would have put the replica beyond MaxLag")

	// Reads go to both replicas.
	spread := open(t, urls(r), cluster.Options{})
	for range 20 {
		require.NoError(t, txn.WithTx(ctx, spread, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT 1")
			return err
		}))
	}
	rs := replicaStats(spread)
	require.Len(t, rs, 2)
	require.Positive(t, rs[0].Reads)
	require.Positive(t, rs[1].Reads)
	require.Equal(t, int64(20), rs[0].Reads+rs[1].Reads)

	// With no check after Open's, the bound grows with time alone, and the
	// replicas leave routing once it passes MaxLag.
	still := open(t, urls(r), cluster.Options{CheckInterval: time.Hour, MaxLag: 300 * time.Millisecond})
	before := replicaStats(still)
	time.Sleep(100 * time.Millisecond)
	after := replicaStats(still)
	require.Greater(t, after[0].Lag, before[0].Lag)
	eventually(t, "the replicas leave routing without a check", func() bool {
		rs := replicaStats(still)
		return !rs[0].Routable && !rs[1].Routable
	})
	require.Equal(t, before[0].CheckedAt, replicaStats(still)[0].CheckedAt, "no check ran")
	rec, err := txn.WithTxValue(ctx, still, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
		return inRecovery(ctx, tx)
	})
	require.NoError(t, err)
	require.False(t, rec)
}

// The checker has a connection of its own: a pool with none free does not
// make its node look dead.
func TestFullPoolKeepsTheNodeHealthy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := open(t, []string{pgtest.NewDatabase(t)}, cluster.Options{CheckInterval: 20 * time.Millisecond, Pool: pool.Options{MaxConns: 1}})
	p, err := c.Primary(ctx)
	require.NoError(t, err)
	held, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()
	first := c.Nodes()[0].CheckedAt
	eventually(t, "several checks", func() bool { return c.Nodes()[0].CheckedAt.Sub(first) > 100*time.Millisecond })
	n := c.Nodes()[0]
	require.True(t, n.Healthy, n.Err)
	require.True(t, n.Routable)
}

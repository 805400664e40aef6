package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/txn"
)

// A primary whose WAL insert position sits just past a page header (after
// a switch to a new WAL segment: a fresh primary, or pg_switch_wal on an
// idle one) is not ahead of a replica that replayed everything: the
// replica, at the page boundary, is within the lag bound and takes reads
// at the next check, also under ReplicasOnly, while the primary is idle.
func TestReplicaOfAnIdlePrimaryAtAPageBoundaryTakesReads(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, r.Primary.URL())
	require.NoError(t, err)
	var lsn string
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_switch_wal()::text").Scan(&lsn))
	require.NoError(t, conn.Close(ctx))
	rconn, err := pgx.Connect(ctx, r.Replicas[0].URL())
	require.NoError(t, err)
	eventually(t, "the replica replays the switch", func() bool {
		var done bool
		require.NoError(t, rconn.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&done))
		return done
	})
	require.NoError(t, rconn.Close(ctx))

	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond, Reads: cluster.ReplicasOnly})
	first, _ := nodeByRole(c, cluster.Replica)
	eventually(t, "another check", func() bool {
		n, _ := nodeByRole(c, cluster.Replica)
		return n.CheckedAt.After(first.CheckedAt)
	})
	n, _ := nodeByRole(c, cluster.Replica)
	require.True(t, n.Routable, "%+v", c.Nodes())
	require.NoError(t, txn.WithTx(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
		rec, err := inRecovery(ctx, tx)
		require.True(t, rec)
		return err
	}))
}

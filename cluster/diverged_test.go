package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// After a failover, the old primary comes back as a primary on its old
// timeline and a replica still follows it, streaming and replaying its
// WAL, numerically ahead of the promoted node: the replica's data has
// diverged from the promoted node's. It must get no reads: a Session's
// read after a write on the promoted node finds the write.
func TestReplicaOfAFormerPrimaryGetsNoReads(t *testing.T) {
	t.Parallel()
	r := replicated(t, 2)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE log (id int)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[1]))

	r.Primary.Stop()
	require.NoError(t, r.Replicas[0].Promote(ctx))
	eventually(t, "the promoted node is the primary", func() bool {
		p, ok := nodeByRole(c, cluster.Primary)
		return ok && p.Routable && portOf(t, p.Name) == r.Replicas[0].Port()
	})
	// The old primary returns on its old timeline; Replicas[1] still
	// follows it, and replays far past the promoted node's position.
	require.NoError(t, r.Primary.Start(ctx))
	old, err := pgx.Connect(ctx, r.Primary.URL())
	require.NoError(t, err)
	_, err = old.Exec(ctx, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 100000) g")
	require.NoError(t, err)
	require.NoError(t, old.Close(ctx))
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[1]))

	s := cluster.NewSession(0)
	sctx := cluster.WithSession(ctx, s)
	for i := range 20 {
		require.NoError(t, txn.WithTx(sctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO log VALUES ($1)", i)
			return err
		}))
		var n int
		var port int
		require.NoError(t, txn.WithTx(sctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port); err != nil {
				return err
			}
			return tx.QueryRow(ctx, "SELECT count(*) FROM log WHERE id = $1", i).Scan(&n)
		}))
		require.Equal(t, 1, n, "read %d on port %d missed the Session's write (nodes %+v)", i, port, c.Nodes())
		require.NotEqual(t, r.Replicas[1].Port(), port, "read %d on the former primary's replica", i)
	}
}

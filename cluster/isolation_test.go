package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/txn"
)

// A replica whose sessions default to SERIALIZABLE (default_transaction_
// isolation, which a hot standby refuses for every statement that takes a
// snapshot) is still checked and shown healthy; reads at the default
// level go to the primary (ReplicasOnly: ErrNoReplica), and reads that
// ask for RepeatableRead run on it.
func TestReplicaDefaultingToSerializable(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1, "default_transaction_isolation=serializable")
	ctx := context.Background()
	c, only := openBoth(t, r, 20*time.Millisecond)
	n, _ := nodeByRole(c, cluster.Replica)
	require.True(t, n.SerializableDefault)
	require.True(t, n.Healthy)
	require.NoError(t, txn.WithTx(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
		rec, err := inRecovery(ctx, tx)
		require.False(t, rec, "a read at the default level runs on the primary")
		return err
	}))
	require.ErrorIs(t, txn.WithTx(ctx, only, txn.Options{ReadOnly: true}, func(context.Context, pgx.Tx) error { return nil }), cluster.ErrNoReplica)
	for _, db := range []*cluster.Cluster{c, only} {
		require.NoError(t, txn.WithTx(ctx, db, txn.Options{ReadOnly: true, Isolation: isolation.RepeatableRead}, func(ctx context.Context, tx pgx.Tx) error {
			rec, err := inRecovery(ctx, tx)
			require.True(t, rec, "a RepeatableRead read runs on the replica")
			return err
		}))
	}
}

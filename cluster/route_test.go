package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func inRecovery(ctx context.Context, q txn.Querier) (bool, error) {
	var rec bool
	err := q.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
	return rec, err
}

// WithTx sends read-write and unmarked work to the primary and ReadOnly
// work to a replica; Q and Primary run on the primary; Nodes shows each
// node's role and what it served. A replica that stops leaves routing (its
// reads go to the primary, none fail) and comes back when it is healthy.
func TestRoutesByAccessModeAndAroundADeadReplica(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 50 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))

	p, ok := nodeByRole(c, cluster.Primary)
	require.True(t, ok)
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", r.Primary.Port()), p.Name)

	for i := range 5 {
		require.NoError(t, txn.WithTx(ctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			rec, err := inRecovery(ctx, tx)
			require.NoError(t, err)
			require.False(t, rec, "a write runs on the primary")
			_, err = tx.Exec(ctx, "INSERT INTO items VALUES ($1)", i)
			return err
		}))
	}
	eventually(t, "the replica is routable", func() bool {
		n, ok := nodeByRole(c, cluster.Replica)
		return ok && n.Routable
	})
	for range 5 {
		require.NoError(t, txn.WithTx(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
			rec, err := inRecovery(ctx, txn.Q(ctx, c))
			require.NoError(t, err)
			require.True(t, rec, "a read runs on the replica, and Q in it joins the transaction")
			return nil
		}))
	}
	rec, err := inRecovery(ctx, txn.Q(ctx, c))
	require.NoError(t, err)
	require.False(t, rec, "Q outside a transaction runs on the primary")
	pp, err := c.Primary(ctx)
	require.NoError(t, err)
	rec, err = inRecovery(ctx, pp)
	require.NoError(t, err)
	require.False(t, rec)

	// locks.Queue takes the Cluster: its claiming transaction is
	// read-write, so it runs on the primary.
	q := locks.Queue[struct{ ID int }]{Table: pgx.Identifier{"items"}, Key: "id", Done: locks.Done{Delete: true}}
	claimed, err := q.Claim(ctx, c, 2, func(ctx context.Context, tx pgx.Tx, items []struct{ ID int }) error {
		rec, err := inRecovery(ctx, tx)
		require.NoError(t, err)
		require.False(t, rec, "a claim runs on the primary")
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, claimed)

	// BeginTx routes by access mode too, for code that manages its own
	// transactions.
	for _, mode := range []pgx.TxAccessMode{pgx.ReadOnly, pgx.ReadWrite} {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: mode})
		require.NoError(t, err)
		rec, err := inRecovery(ctx, tx)
		require.NoError(t, err)
		require.Equal(t, mode == pgx.ReadOnly, rec, mode)
		require.NoError(t, tx.Rollback(ctx))
	}

	p, _ = nodeByRole(c, cluster.Primary)
	rep, _ := nodeByRole(c, cluster.Replica)
	require.Equal(t, int64(6), p.Writes, "five inserts and the claim")
	require.Equal(t, int64(5), rep.Reads)
	require.Zero(t, p.Reads)

	// The replica stops: reads keep succeeding, on the primary once the
	// replica is out of routing.
	r.Replicas[0].Stop()
	read := func() (bool, error) {
		return txn.WithTxValue(ctx, c, txn.Options{ReadOnly: true, Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
			return inRecovery(ctx, tx)
		})
	}
	eventually(t, "reads go to the primary", func() bool {
		rec, err := read()
		require.NoError(t, err)
		return !rec
	})
	for _, n := range c.Nodes() {
		if n.Name == rep.Name {
			require.False(t, n.Healthy)
			require.False(t, n.Routable)
			require.NotEmpty(t, n.Err)
		}
	}
	require.Positive(t, c.Stats().Fallbacks)

	require.NoError(t, r.Replicas[0].Start(ctx))
	eventually(t, "reads go to the replica again", func() bool {
		rec, err := read()
		require.NoError(t, err)
		return rec
	})

	// With no primary known, reads still run on the replica, bounded by
	// the commit time of the last transaction it replayed, and a write
	// waits PrimaryWait for a primary and fails with ErrNoPrimary.
	_, err = c.Exec(ctx, "INSERT INTO items VALUES (100)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))
	only := open(t, []string{r.Replicas[0].URL()}, cluster.Options{MaxLag: time.Hour, PrimaryWait: 200 * time.Millisecond})
	rec, err = txn.WithTxValue(ctx, only, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
		return inRecovery(ctx, tx)
	})
	require.NoError(t, err)
	require.True(t, rec)
	err = txn.WithTx(ctx, only, txn.Options{}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, cluster.ErrNoPrimary)
	_, err = only.Primary(ctx)
	require.ErrorIs(t, err, cluster.ErrNoPrimary)
}

package cluster_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A replica held back by recovery_min_apply_delay while the primary keeps
// committing is beyond MaxLag, and beyond MaxLagBytes: it gets no reads.
// Reads go to the primary, or fail with ErrNoReplica under ReplicasOnly.
// With a bound it is within, it serves reads, and they are stale; reads
// with a Session (in ctx, or resumed from its token) never are.
func TestLagBoundAndReadYourWrites(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1, "recovery_min_apply_delay=2s")
	ctx := context.Background()
	urls := urls(r)
	c := open(t, urls, cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: 300 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counter VALUES (1, 0); CREATE TABLE seen (id int PRIMARY KEY)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))

	// The primary commits every few milliseconds until the test ends.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var committed atomic.Int64
	wg.Go(func() {
		for wctx.Err() == nil {
			err := txn.WithTx(wctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "UPDATE counter SET n = n + 1")
				return err
			})
			if err != nil && wctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
			committed.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })

	// Once the writer has committed for longer than the apply delay, the
	// replica is always at least that far behind: every commit of the
	// last two seconds waits on it.
	started := time.Now()
	eventually(t, "the writer has run past the apply delay", func() bool {
		return time.Since(started) > 2500*time.Millisecond && committed.Load() > 10
	})
	eventually(t, "the delayed replica leaves routing", func() bool {
		n, ok := nodeByRole(c, cluster.Replica)
		return ok && n.Healthy && !n.Routable && n.Lag > 300*time.Millisecond
	})
	for range 10 {
		rec, err := txn.WithTxValue(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
			return inRecovery(ctx, tx)
		})
		require.NoError(t, err)
		require.False(t, rec, "beyond MaxLag the replica gets no reads: %+v", c.Nodes())
	}
	only := open(t, urls, cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: 300 * time.Millisecond, Reads: cluster.ReplicasOnly})
	err = txn.WithTx(ctx, only, txn.Options{ReadOnly: true}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, cluster.ErrNoReplica)

	bytes := open(t, urls, cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: time.Hour, MaxLagBytes: 1})
	for range 10 {
		rec, err := txn.WithTxValue(ctx, bytes, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
			return inRecovery(ctx, tx)
		})
		require.NoError(t, err)
		require.False(t, rec, "beyond MaxLagBytes the replica gets no reads")
	}

	// Within a loose bound the replica serves reads: without a Session
	// they miss the caller's own writes; with one, never.
	loose := open(t, urls, cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: time.Hour})
	eventually(t, "the replica is within the loose bound", func() bool {
		n, ok := nodeByRole(loose, cluster.Replica)
		return ok && n.Routable
	})
	seen := func(ctx context.Context, id int) (bool, error) {
		return txn.WithTxValue(ctx, loose, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
			var n int
			err := tx.QueryRow(ctx, "SELECT count(*) FROM seen WHERE id = $1", id).Scan(&n)
			return n == 1, err
		})
	}
	const writes = 20
	staleWith, staleWithout, staleToken := 0, 0, 0
	for i := range writes {
		sess := cluster.NewSession(0)
		sctx := cluster.WithSession(ctx, sess)
		require.NoError(t, txn.WithTx(sctx, loose, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO seen VALUES ($1)", i)
			return err
		}))
		require.NotEmpty(t, sess.Token())
		ok, err := seen(ctx, i)
		require.NoError(t, err)
		if !ok {
			staleWithout++
		}
		ok, err = seen(sctx, i)
		require.NoError(t, err)
		if !ok {
			staleWith++
		}
		resumed, err := cluster.ResumeSession(sess.Token())
		require.NoError(t, err)
		ok, err = seen(cluster.WithSession(ctx, resumed), i)
		require.NoError(t, err)
		if !ok {
			staleToken++
		}
	}
	t.Logf("%d writes: stale reads without a Session %d, with one %d, with its token %d; stats %+v",
		writes, staleWithout, staleWith, staleToken, loose.Stats())
	require.Zero(t, staleWith)
	require.Zero(t, staleToken)
	require.Positive(t, staleWithout, "the delayed replica served reads that missed the writes")

	// Under ReplicasOnly a Session read the replica cannot catch up with
	// in SessionWait fails rather than going stale.
	strict := open(t, urls, cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: time.Hour, Reads: cluster.ReplicasOnly})
	eventually(t, "the replica is routable", func() bool {
		n, ok := nodeByRole(strict, cluster.Replica)
		return ok && n.Routable
	})
	sess := cluster.NewSession(0)
	sctx := cluster.WithSession(ctx, sess)
	require.NoError(t, txn.WithTx(sctx, strict, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO seen VALUES (-1)")
		return err
	}))
	err = txn.WithTx(sctx, strict, txn.Options{ReadOnly: true}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, cluster.ErrNoReplica)
}

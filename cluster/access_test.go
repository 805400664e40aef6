package cluster_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// logBuffer is a Logger's output, safe for the checker's goroutine.
type logBuffer struct{ logtest.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// A write refused with 25006 on the primary (fn made its transaction READ
// ONLY, or a ReadOnly transaction ran there under PrimaryOnly) is the
// caller's error: it is returned after one attempt and the primary stays
// in routing. A ReadOnly transaction on the primary records no Session
// position and counts as a read.
func TestAWriteRefusedOnThePrimaryIsNotRerouted(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	for _, reads := range []cluster.Reads{cluster.ReplicasOrPrimary, cluster.PrimaryOnly} {
		t.Run(reads.String(), func(t *testing.T) {
			var logs logBuffer
			c := open(t, urls(r), cluster.Options{Reads: reads, Logger: logs.logger()})
			s := cluster.NewSession(0)
			require.NoError(t, txn.WithTx(cluster.WithSession(ctx, s), c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS refused (id int)")
				return err
			}))

			var calls atomic.Int64
			err := txn.WithTx(ctx, c, txn.Options{Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
				calls.Add(1)
				if _, err := tx.Exec(ctx, "SET TRANSACTION READ ONLY"); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "INSERT INTO refused VALUES (1)")
				return err
			})
			require.Equal(t, pgerrcode.ReadOnlySQLTransaction, retry.SQLState(err), "%v", err)
			require.NotErrorIs(t, err, retry.ErrExhausted)
			require.EqualValues(t, 1, calls.Load(), "a write refused on the primary runs once")

			// A ReadOnly transaction that writes, on a replica or the
			// primary: the server's 25006, once.
			before, _ := nodeByRole(c, cluster.Primary)
			calls.Store(0)
			err = txn.WithTx(cluster.WithSession(ctx, s), c, txn.Options{ReadOnly: true, Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
				calls.Add(1)
				_, err := tx.Exec(ctx, "INSERT INTO refused VALUES (1)")
				return err
			})
			require.Equal(t, pgerrcode.ReadOnlySQLTransaction, retry.SQLState(err), "%v", err)
			require.EqualValues(t, 1, calls.Load(), "a ReadOnly transaction that writes runs once")
			if reads == cluster.PrimaryOnly {
				s := cluster.NewSession(0)
				require.NoError(t, txn.WithTx(cluster.WithSession(ctx, s), c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
					rec, err := inRecovery(ctx, tx)
					require.False(t, rec, "PrimaryOnly reads on the primary")
					return err
				}))
				require.Zero(t, s.Position(), "a read records no commit position")
				after, _ := nodeByRole(c, cluster.Primary)
				require.Equal(t, before.Writes, after.Writes)
				require.Equal(t, before.Reads+1, after.Reads)
			}
			require.NotContains(t, logs.String(), "out of routing", "the primary stayed in routing")
		})
	}
}

// A hot standby refuses SERIALIZABLE: a SERIALIZABLE READ ONLY transaction
// (DEFERRABLE or not) runs on the primary, and under ReplicasOnly fails
// with ErrNoReplica without reaching a server.
func TestASerializableReadRunsOnThePrimary(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))
	c, only := openBoth(t, r, 50*time.Millisecond)
	for _, deferrable := range []bool{false, true} {
		o := txn.Options{ReadOnly: true, Deferrable: deferrable, Isolation: isolation.Serializable, Retry: retry.Never()}
		require.NoError(t, txn.WithTx(ctx, c, o, func(ctx context.Context, tx pgx.Tx) error {
			rec, err := inRecovery(ctx, tx)
			require.False(t, rec, "a SERIALIZABLE read runs on the primary")
			return err
		}))
		called := false
		err := txn.WithTx(ctx, only, o, func(ctx context.Context, tx pgx.Tx) error {
			called = true
			return nil
		})
		require.ErrorIs(t, err, cluster.ErrNoReplica)
		require.False(t, called)
		require.Contains(t, err.Error(), "SERIALIZABLE")
	}
	// A RepeatableRead read still runs on a replica.
	require.NoError(t, txn.WithTx(ctx, only, txn.Options{ReadOnly: true, Isolation: isolation.RepeatableRead}, func(ctx context.Context, tx pgx.Tx) error {
		rec, err := inRecovery(ctx, tx)
		require.True(t, rec)
		return err
	}))
	// BeginTx does the same.
	tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.Serializable})
	require.NoError(t, err)
	rec, err := inRecovery(ctx, tx)
	require.NoError(t, err)
	require.False(t, rec)
	require.NoError(t, tx.Rollback(ctx))
	_, err = only.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.Serializable})
	require.ErrorIs(t, err, cluster.ErrNoReplica)
}

// A token is not authenticated: a forged one that parses (a position far
// past anything written, as from another cluster or an old timeline) only
// moves that Session's reads to the primary, after SessionWait, and under
// ReplicasOnly fails them with ErrNoReplica; a read without it still runs
// on the replica.
func TestForgedTokenSendsOnlyItsReadsToThePrimary(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c, only := openBoth(t, r, 20*time.Millisecond)
	s, err := cluster.ResumeSession("7FFFFFFF/FFFFFF00")
	require.NoError(t, err)
	sctx := cluster.WithSession(ctx, s)
	require.NoError(t, txn.WithTx(sctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
		rec, err := inRecovery(ctx, tx)
		require.False(t, rec, "the forged Session's read runs on the primary")
		return err
	}))
	require.EqualValues(t, 1, c.Stats().Fallbacks)
	require.EqualValues(t, 1, c.Stats().SessionWaits)
	require.ErrorIs(t, txn.WithTx(sctx, only, txn.Options{ReadOnly: true}, func(context.Context, pgx.Tx) error { return nil }), cluster.ErrNoReplica)
	require.NoError(t, txn.WithTx(ctx, only, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
		rec, err := inRecovery(ctx, tx)
		require.True(t, rec)
		return err
	}))
	require.Equal(t, "7FFFFFFF/FFFFFF00", s.Token(), "reads do not move a Session")
}

// A Session whose position is unknown (a lost commit position, or a token
// at UnknownPosition) reads on the primary without waiting for a replica,
// and its next write through the Cluster replaces the unknown position
// with that commit's: its reads go back to the replica.
func TestUnknownSessionHealsAtItsNextWrite(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond, SessionWait: 5 * time.Second})
	eventually(t, "the replica is routable", func() bool {
		n, ok := nodeByRole(c, cluster.Replica)
		return ok && n.Routable
	})
	s, err := cluster.ResumeSession(cluster.UnknownPosition.String())
	require.NoError(t, err)
	require.True(t, s.Unknown())
	sctx := cluster.WithSession(ctx, s)
	read := func() bool {
		var rec bool
		require.NoError(t, txn.WithTx(sctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			rec, err = inRecovery(ctx, tx)
			return err
		}))
		return rec
	}
	require.False(t, read(), "an unknown Session reads on the primary")
	require.Zero(t, c.Stats().SessionWaits, "without waiting for a replica")
	require.NoError(t, txn.WithTx(sctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "CREATE TABLE healed (id int)")
		return err
	}))
	require.False(t, s.Unknown())
	require.Less(t, s.Position(), cluster.UnknownPosition)
	require.True(t, read(), "after its next write, on the replica")

	// Observe never lowers a position, unknown included.
	s.Observe(cluster.UnknownPosition)
	s.Observe(1)
	require.True(t, s.Unknown())
}

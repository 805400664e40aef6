package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A read on a replica cancelled by a recovery conflict (the primary
// vacuumed rows its snapshot needed, max_standby_streaming_delay=0; the
// server ends the connection with FATAL 40001) runs again and succeeds.
// (The retries may first wait out, under txn's lock_timeout after a
// 40001, the lock the replica holds while it replays the vacuum's
// truncation: 55P03, retried too.)
func TestReadCancelledByARecoveryConflictRunsAgain(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1, "max_standby_streaming_delay=0", "hot_standby_feedback=off")
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 20 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE rows AS SELECT g FROM generate_series(1, 1000) g")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))
	eventually(t, "the replica is routable", func() bool {
		n, ok := nodeByRole(c, cluster.Replica)
		return ok && n.Routable
	})
	primary, err := pgx.Connect(ctx, r.Primary.URL())
	require.NoError(t, err)
	defer func() { require.NoError(t, primary.Close(ctx)) }()

	attempts := 0
	var firstErr error
	require.NoError(t, txn.WithTx(ctx, c, txn.Options{ReadOnly: true, Isolation: isolation.RepeatableRead, Retry: fastRetry(5)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM rows").Scan(&n); err != nil {
			return err
		}
		if attempts > 1 {
			return nil
		}
		rec, err := inRecovery(ctx, tx)
		require.NoError(t, err)
		require.True(t, rec)
		_, err = primary.Exec(ctx, "DELETE FROM rows")
		require.NoError(t, err)
		_, err = primary.Exec(ctx, "VACUUM rows")
		require.NoError(t, err)
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM rows").Scan(&n); err != nil {
				firstErr = err
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("no recovery conflict in a minute")
		return nil
	}))
	require.GreaterOrEqual(t, attempts, 2)
	t.Logf("first attempt: %v (SQLSTATE %s); %d attempts", firstErr, retry.SQLState(firstErr), attempts)
	require.Equal(t, "40001", retry.SQLState(firstErr), "%v", firstErr)
}

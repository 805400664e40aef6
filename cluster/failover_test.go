package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// The primary stops and its replica is promoted while writers run: writes
// in flight are retried and land on the new primary; the only errors are
// ErrCommitUnknown for a COMMIT whose answer the stop cut off; every write
// reported committed is on the new primary.
func TestFailoverCostsARetry(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 100 * time.Millisecond, CheckTimeout: 500 * time.Millisecond})
	_, err := c.Exec(ctx, "CREATE TABLE log (id bigint PRIMARY KEY)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))

	policy := &retry.Policy{MaxAttempts: 100, InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond}
	w, stop := startWriters(t, ctx, c, policy)
	defer stop()
	eventually(t, "writes commit on the first primary", func() bool { return w.count() >= 100 })

	stopped := time.Now()
	r.Primary.Stop()
	before := w.count()
	require.NoError(t, r.Replicas[0].Promote(ctx))
	promoted := time.Now()
	eventually(t, "writes commit on the new primary", func() bool { return w.count() >= before+100 })
	stop()

	first := time.Duration(-1)
	for _, cm := range w.committed {
		if cm.at.After(promoted) && (first < 0 || cm.at.Sub(promoted) < first) {
			first = cm.at.Sub(promoted)
		}
	}
	committed := w.ids()
	t.Logf("%d writes reported committed, %d with outcome unknown; promotion took %v after the stop; first commit %v after the promotion returned; nodes %+v",
		len(committed), w.unknown, promoted.Sub(stopped), first, c.Nodes())

	p, ok := nodeByRole(c, cluster.Primary)
	require.True(t, ok)
	require.Equal(t, r.Replicas[0].Port(), portOf(t, p.Name))
	conn, err := pgx.Connect(ctx, r.Replicas[0].URL())
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var found int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM log WHERE id = ANY($1)", committed).Scan(&found))
	require.Equal(t, len(committed), found, "every write reported committed is on the new primary")
}

// A replica promoted while the old primary still runs (a failover manager
// that has not fenced it yet): both claim to be primary, and writes go to
// the one most recently seen turning primary.
func TestTwoPrimariesWritesGoToThePromoted(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	// One DSN naming both hosts is one node per host.
	multi := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable", r.Primary.Port(), r.Replicas[0].Port())
	c := open(t, []string{multi}, cluster.Options{CheckInterval: 50 * time.Millisecond})
	require.Len(t, c.Nodes(), 2)
	require.NoError(t, r.Replicas[0].Promote(ctx))
	eventually(t, "the promoted node takes the writes", func() bool {
		var port int
		err := txn.WithTx(ctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port)
		})
		require.NoError(t, err)
		return port == r.Replicas[0].Port()
	})
	for range 5 {
		var port int
		require.NoError(t, txn.WithTx(ctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port)
		}))
		require.Equal(t, r.Replicas[0].Port(), port)
	}
	primaries := 0
	for _, n := range c.Nodes() {
		if n.Role == cluster.Primary {
			primaries++
		}
	}
	require.Equal(t, 2, primaries)
}

// The checker has not yet seen the failover when a write arrives: the old
// primary, restarted as a standby of the promoted node, refuses the write
// with 25006. The node leaves routing, a check finds the new primary, and
// WithTx runs the write there.
func TestWriteRefusedByAStandbyRunsOnTheNewPrimary(t *testing.T) {
	t.Parallel()
	r := replicated(t, 1)
	ctx := context.Background()
	var logs logtest.Buffer
	// No periodic check after Open's: only a failure makes one.
	c := open(t, urls(r), cluster.Options{CheckInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, err := c.Exec(ctx, "CREATE TABLE log (id int PRIMARY KEY)")
	require.NoError(t, err)
	require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, r.Replicas[0]))

	r.Primary.Stop()
	require.NoError(t, r.Replicas[0].Promote(ctx))
	require.NoError(t, r.Primary.Follow(ctx, r.Replicas[0], ""))
	p, ok := nodeByRole(c, cluster.Primary)
	require.True(t, ok)
	require.Equal(t, r.Primary.Port(), portOf(t, p.Name), "the Cluster has not noticed yet")
	// Drop the connections the restart broke, so the write meets the
	// standby itself rather than a dead connection (which would also make
	// the Cluster check at once).
	old, err := c.Primary(ctx)
	require.NoError(t, err)
	old.Reset()

	var port int
	require.NoError(t, txn.WithTx(ctx, c, txn.Options{Retry: fastRetry(10)}, func(ctx context.Context, tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO log VALUES (1)")
		return err
	}))
	require.Equal(t, r.Replicas[0].Port(), port)
	require.Contains(t, logs.String(), "25006", "the old primary refused the write as a standby")
	p, _ = nodeByRole(c, cluster.Primary)
	require.Equal(t, r.Replicas[0].Port(), portOf(t, p.Name))
}

// After a failover a replica gets no reads until it is seen following the
// new primary (streaming, and replaying new WAL): one still pointed at the
// stopped primary might be on the old timeline. Re-pointed at the new
// primary, it serves reads again.
func TestReplicaWaitsToFollowTheNewPrimary(t *testing.T) {
	t.Parallel()
	r := replicated(t, 2)
	ctx := context.Background()
	c := open(t, urls(r), cluster.Options{CheckInterval: 50 * time.Millisecond, MaxLag: time.Hour})
	_, err := c.Exec(ctx, "CREATE TABLE log (id int PRIMARY KEY)")
	require.NoError(t, err)
	for _, rep := range r.Replicas {
		require.NoError(t, pgtest.WaitReplayed(ctx, r.Primary, rep))
	}
	second := fmt.Sprintf("127.0.0.1:%d", r.Replicas[1].Port())
	stats := func() cluster.NodeStats {
		for _, n := range c.Nodes() {
			if n.Name == second {
				return n
			}
		}
		t.Fatal("no such node")
		return cluster.NodeStats{}
	}
	eventually(t, "the second replica is routable", func() bool { return stats().Routable })

	r.Primary.Stop()
	require.NoError(t, r.Replicas[0].Promote(ctx))
	eventually(t, "the promoted node is primary", func() bool {
		p, ok := nodeByRole(c, cluster.Primary)
		return ok && portOf(t, p.Name) == r.Replicas[0].Port()
	})
	id := 0
	write := func() {
		id++
		_, err := c.Exec(ctx, "INSERT INTO log VALUES ($1)", id)
		require.NoError(t, err)
	}
	write()
	n := stats()
	require.True(t, n.AwaitingPrimary)
	require.False(t, n.Routable)
	for range 5 {
		rec, err := txn.WithTxValue(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
			return inRecovery(ctx, tx)
		})
		require.NoError(t, err)
		require.False(t, rec, "reads go to the new primary, not to the replica of the old one")
	}

	require.NoError(t, r.Replicas[1].Follow(ctx, r.Replicas[0], ""))
	eventually(t, "the re-pointed replica serves reads", func() bool {
		write()
		rec, err := txn.WithTxValue(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
			return inRecovery(ctx, tx)
		})
		require.NoError(t, err)
		return rec
	})
	require.False(t, stats().AwaitingPrimary)
}

package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A COMMIT whose answer is lost is settled through a Cluster as through a
// pool: the transaction committed, WithTx reports success, and it ran once.
func TestLostCommitAnswerIsResolved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var proxy *faultproxy.Proxy
	c := open(t, []string{pgtest.NewDatabase(t)}, cluster.Options{Pool: pool.Options{Configure: func(cfg *pgxpool.Config) {
		p, err := faultproxy.Interpose(&cfg.ConnConfig.Config)
		require.NoError(t, err)
		proxy = p
		t.Cleanup(func() { _ = p.Close() })
	}}})
	_, err := c.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	for i, sess := range []*cluster.Session{nil, cluster.NewSession(0)} {
		sctx := ctx
		if sess != nil {
			sctx = cluster.WithSession(ctx, sess)
		}
		proxy.ArmCommitFault(faultproxy.CutAfterXID)
		attempts := 0
		require.NoError(t, txn.WithTx(sctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			_, err := tx.Exec(ctx, "INSERT INTO items VALUES ($1)", i)
			return err
		}))
		require.Equal(t, 1, attempts)
		if sess != nil {
			// The position's answer was cut off with COMMIT's: the Session
			// still holds a position past the commit.
			var now cluster.Position
			var lsn string
			require.NoError(t, c.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn))
			now, err = cluster.ParsePosition(lsn)
			require.NoError(t, err)
			require.NotZero(t, sess.Position())
			require.LessOrEqual(t, sess.Position(), now)
		}
	}
	var n int
	require.NoError(t, c.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
	require.Equal(t, 2, n)
}

// Routing adds no round trip: a read-write transaction (with a Session,
// whose commit position rides in COMMIT's write) and a read-only one cost
// through the Cluster what they cost on the node's pool directly.
func TestRoutingCostsNoRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rt *pgtest.RoundTrips
	// The checker's connection is dialled from the same configuration: one
	// round at Open and none after, so that it does not add to the count.
	c := open(t, []string{pgtest.NewDatabase(t)}, cluster.Options{CheckInterval: time.Hour, Pool: pool.Options{MaxConns: 1, Configure: func(cfg *pgxpool.Config) {
		rt = pgtest.CountRoundTrips(cfg)
	}}})
	_, err := c.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL); INSERT INTO items VALUES (1, 0)")
	require.NoError(t, err)
	p, err := c.Primary(ctx)
	require.NoError(t, err)
	update := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = 1")
		return err
	}
	read := func(ctx context.Context, tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT n FROM items WHERE id = 1").Scan(&n)
	}
	count := func(ctx context.Context, db txn.Beginner, opts txn.Options, fn func(context.Context, pgx.Tx) error) int64 {
		require.NoError(t, txn.WithTx(ctx, db, opts, fn)) // statements prepared
		rt.Reset()
		require.NoError(t, txn.WithTx(ctx, db, opts, fn))
		return rt.Load()
	}
	sess := cluster.NewSession(0)
	sctx := cluster.WithSession(ctx, sess)
	for _, tc := range []struct {
		name string
		opts txn.Options
		fn   func(context.Context, pgx.Tx) error
	}{{"update", txn.Options{}, update}, {"read-only", txn.Options{ReadOnly: true}, read}} {
		direct := count(ctx, p.Pgx(), tc.opts, tc.fn)
		routed := count(ctx, c, tc.opts, tc.fn)
		withSession := count(sctx, c, tc.opts, tc.fn)
		t.Logf("%s: %d round trips on the pool, %d through the Cluster, %d with a Session", tc.name, direct, routed, withSession)
		require.Equal(t, direct, routed, tc.name)
		require.Equal(t, direct, withSession, tc.name)
	}
	require.NotEmpty(t, sess.Token(), "the Session holds the commit position")
}

package txn_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// traced is one query a tracer saw, start and end.
type traced struct {
	sql   string
	tag   string
	err   error
	ended bool
}

// countingTracer records every query pgx reports, pairing each end with its
// start through the ctx TraceQueryStart returned.
type countingTracer struct {
	mu  sync.Mutex
	got []*traced
}

type tracedKey struct{}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q := &traced{sql: d.SQL}
	c.mu.Lock()
	c.got = append(c.got, q)
	c.mu.Unlock()
	return context.WithValue(ctx, tracedKey{}, q)
}

func (c *countingTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	q := ctx.Value(tracedKey{}).(*traced)
	c.mu.Lock()
	q.tag, q.err, q.ended = d.CommandTag.String(), d.Err, true
	c.mu.Unlock()
}

func (c *countingTracer) take() []traced {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]traced, len(c.got))
	for i, q := range c.got {
		out[i] = *q
	}
	c.got = nil
	return out
}

func sqls(qs []traced) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = strings.ToUpper(q.sql)
	}
	return out
}

// Every statement WithTx sends reaches the tracer configured on the
// connection, as with hand-written pgx: BEGIN, fn's statements, COMMIT
// (the transaction-id query sent with it folded into COMMIT's trace).
func TestTracerSeesEveryStatement(t *testing.T) {
	t.Parallel()
	tracer := &countingTracer{}
	b := setup(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = tracer })
	tracer.take() // the harness's own statements
	stmt := "INSERT INTO items (id) VALUES ($1)"
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, stmt, 1)
		return err
	}))
	got := tracer.take()
	require.Equal(t, []string{"BEGIN", strings.ToUpper(stmt), "COMMIT"}, sqls(got))
	for _, q := range got {
		require.True(t, q.ended, q.sql)
		require.NoError(t, q.err, q.sql)
	}
	require.Equal(t, "COMMIT", got[2].tag)

	// Nested calls: SAVEPOINT, RELEASE and ROLLBACK TO are traced.
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_ = txn.WithTx(ctx, b.pool, txn.Options{}, insert(1)) // unique violation: rolled back to
		return txn.WithTx(ctx, b.pool, txn.Options{}, insert(2))
	})
	require.NoError(t, err)
	got = tracer.take()
	require.Len(t, got, 8, "%q", sqls(got))
	require.Equal(t, "BEGIN", sqls(got)[0])
	require.True(t, strings.HasPrefix(sqls(got)[1], "SAVEPOINT "), sqls(got)[1])
	require.True(t, strings.HasPrefix(sqls(got)[3], "ROLLBACK TO SAVEPOINT "), sqls(got)[3])
	require.True(t, strings.HasPrefix(sqls(got)[4], "SAVEPOINT "), sqls(got)[4])
	require.True(t, strings.HasPrefix(sqls(got)[6], "RELEASE SAVEPOINT "), sqls(got)[6])
	require.Equal(t, "COMMIT", sqls(got)[7])

	// A COMMIT the server refuses ends its trace with the error.
	commitFailures(t, b, pgerrcode.SerializationFailure, 1)
	tracer.take()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(3)}, insert(3)))
	got = tracer.take()
	require.Equal(t, []string{"BEGIN", strings.ToUpper(stmt), "COMMIT", "BEGIN", strings.ToUpper(stmt), "COMMIT"}, sqls(got))
	require.Equal(t, pgerrcode.SerializationFailure, retry.SQLState(got[2].err))
	require.NoError(t, got[5].err)

	// A COMMIT that answers ROLLBACK ends its trace with pgx's error.
	err = txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, "SELECT 1/0")
		return nil
	})
	require.ErrorIs(t, err, pgx.ErrTxCommitRollback)
	got = tracer.take()
	last := got[len(got)-1]
	require.Equal(t, "COMMIT", strings.ToUpper(last.sql))
	require.Equal(t, "ROLLBACK", last.tag)
	require.ErrorIs(t, last.err, pgx.ErrTxCommitRollback)
}

// Finding the tracer for a COMMIT costs no allocation after a connection's
// first commit, with a tracer or without.
// Not parallel: AllocsPerRun refuses to run in a parallel test.
func TestTracerLookupIsFree(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	plain := pgtest.Connect(t, dsn)
	require.Zero(t, txn.TracerLookupAllocs(plain))
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.Tracer = &countingTracer{}
	traced, err := pgx.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer func() { _ = traced.Close(context.Background()) }()
	require.Zero(t, txn.TracerLookupAllocs(traced))
}

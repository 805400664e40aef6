package txn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/txn"
)

// dbtx is the interface sqlc generates for pgx/v5 once a query uses
// :copyfrom or :batch*.
type dbtx interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

// queries stands for sqlc's generated Queries.
type queries struct{ db dbtx }

func newQueries(db dbtx) *queries { return &queries{db: db} }

// Compile-time: what txn.Q returns is a sqlc DBTX, and everything txn
// documents as a Querier is one.
var (
	_ dbtx        = txn.Querier(nil)
	_ txn.Querier = (*pgxpool.Pool)(nil)
	_ txn.Querier = (*pgxpool.Conn)(nil)
	_ txn.Querier = (*pgx.Conn)(nil)
	_ txn.Querier = pgx.Tx(nil)
)

func (q *queries) copyItems(ctx context.Context, ids ...int) (int64, error) {
	rows := make([][]any, len(ids))
	for i, id := range ids {
		rows[i] = []any{id}
	}
	return q.db.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id"}, pgx.CopyFromRows(rows))
}

func (q *queries) batchItems(ctx context.Context, ids ...int) error {
	b := &pgx.Batch{}
	for _, id := range ids {
		b.Queue("INSERT INTO items (id) VALUES ($1)", id)
	}
	return q.db.SendBatch(ctx, b).Close()
}

// sqlc's pattern: queries.New(txn.Q(ctx, pool)) joins the ctx's
// transaction, :copyfrom and :batch included, and runs alone outside one.
func TestSqlcQueriesJoinTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	errRollBack := errors.New("roll back")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		q := newQueries(txn.Q(ctx, b.pool))
		n, err := q.copyItems(ctx, 1, 2, 3)
		if err != nil {
			return err
		}
		require.Equal(t, int64(3), n)
		if err := q.batchItems(ctx, 4, 5); err != nil {
			return err
		}
		var count int
		require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&count))
		require.Equal(t, 5, count, "the copy and the batch ran in this transaction")
		return errRollBack
	})
	require.ErrorIs(t, err, errRollBack)
	require.Zero(t, b.count(t))

	q := newQueries(txn.Q(b.ctx, b.pool))
	_, err = q.copyItems(b.ctx, 1, 2)
	require.NoError(t, err)
	require.NoError(t, q.batchItems(b.ctx, 3))
	require.Equal(t, 3, b.count(t))
}

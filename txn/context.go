package txn

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what a repository method needs to run statements. *pgxpool.Pool,
// *pgxpool.Conn, *pgx.Conn and pgx.Tx all satisfy it. It is also the DBTX
// interface sqlc generates for pgx/v5, including CopyFrom and SendBatch
// for :copyfrom and :batch queries, so queries.New(txn.Q(ctx, pool)) runs
// generated queries in the ctx's transaction or on the pool.
type Querier interface {
	Exec(ctx context.Context, sql string, arguments ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// ctxKey is the context key WithTx stores the running transaction under.
type ctxKey struct{}

// FromContext returns the transaction WithTx put in ctx, if any.
func FromContext(ctx context.Context) (pgx.Tx, bool) {
	st := stateFrom(ctx)
	if st == nil {
		return nil, false
	}
	return st.tx, true
}

// Q returns the transaction in ctx if there is one, else db. A repository
// method written against Q works unchanged inside a WithTx (its statements
// join the transaction) and outside one (each runs on its own):
//
//	func (r *Repo) Rename(ctx context.Context, id int64, name string) error {
//		_, err := txn.Q(ctx, r.pool).Exec(ctx, "UPDATE items SET name = $1 WHERE id = $2", name, id)
//		return err
//	}
func Q(ctx context.Context, db Querier) Querier {
	if tx, ok := FromContext(ctx); ok {
		return tx
	}
	return db
}

func stateFrom(ctx context.Context) *txState {
	st, _ := ctx.Value(ctxKey{}).(*txState)
	return st
}

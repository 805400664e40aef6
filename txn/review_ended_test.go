package txn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// fn that ends the transaction with COMMIT or ROLLBACK sent through Query
// or SendBatch, not Exec, is noticed as one sent through Exec is: a later
// statement must not run, and commit, outside any transaction when fn
// then fails.
func TestTransactionEndedOutsideExecIsNoticed(t *testing.T) {
	t.Parallel()
	ends := map[string]func(ctx context.Context, tx pgx.Tx, end string) error{
		"query": func(ctx context.Context, tx pgx.Tx, end string) error {
			rows, err := tx.Query(ctx, end)
			if err != nil {
				return err
			}
			rows.Close()
			return rows.Err()
		},
		"batch": func(ctx context.Context, tx pgx.Tx, end string) error {
			b := &pgx.Batch{}
			b.Queue(end)
			return tx.SendBatch(ctx, b).Close()
		},
	}
	for how, send := range ends {
		for _, first := range []bool{true, false} {
			for _, end := range []string{"ROLLBACK", "COMMIT"} {
				name := how + "/" + end
				if !first {
					name += "/after-a-statement"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					b := setup(t)
					var later error
					err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
						if !first {
							if _, err := tx.Exec(ctx, "SELECT $1::int", 1); err != nil {
								return err
							}
						}
						if err := send(ctx, tx, end); err != nil {
							return err
						}
						_, later = tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", 7)
						return errors.New("fail")
					})
					require.Error(t, err)
					require.Zero(t, b.count(t), "a statement after %s committed outside the transaction (its error: %v)", end, later)
				})
			}
		}
	}
}

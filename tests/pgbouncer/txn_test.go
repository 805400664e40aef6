package pgbouncer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgbouncer"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// TestWithTxThroughTransactionPooling runs WithTx at every isolation level
// through PgBouncer in transaction mode: the options that ride in BEGIN,
// the COMMIT pipelined behind the transaction-id query, and a retry from
// BEGIN all work when each transaction may land on another server
// connection.
func TestWithTxThroughTransactionPooling(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	_, err := b.direct.Exec(b.ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)

	for i, lvl := range []isolation.Level{isolation.Default, isolation.ReadCommitted, isolation.RepeatableRead, isolation.Serializable} {
		attempts := 0
		got, err := txn.WithTxValue(b.ctx, b.bounced, txn.Options{Isolation: lvl, LockTimeout: time.Second, Retry: &retry.Policy{InitialInterval: time.Millisecond}},
			func(ctx context.Context, tx pgx.Tx) (string, error) {
				attempts++
				var s string
				if err := tx.QueryRow(ctx, "SELECT current_setting('transaction_isolation')").Scan(&s); err != nil {
					return "", err
				}
				if _, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES ($1)", i); err != nil {
					return "", err
				}
				if attempts == 1 {
					_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$`)
					return "", err
				}
				return s, nil
			})
		require.NoError(t, err, lvl.String())
		require.Equal(t, 2, attempts)
		if lvl != isolation.Default {
			parsed, err := isolation.Parse(got)
			require.NoError(t, err)
			require.Equal(t, lvl, parsed)
		}
	}
	var n int
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT count(*) FROM items").Scan(&n))
	require.Equal(t, 4, n)
}

// TestSerializableContentionThroughTransactionPooling runs concurrent
// read-modify-write increments at SERIALIZABLE through PgBouncer: none is
// lost.
func TestSerializableContentionThroughTransactionPooling(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	_, err := b.direct.Exec(b.ctx, "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)")
	require.NoError(t, err)
	_, err = b.direct.Exec(b.ctx, "INSERT INTO counter VALUES (1, 0)")
	require.NoError(t, err)

	const workers, each = 4, 25
	pgtest.Concurrently(t, workers, each, func() error {
		return txn.WithTx(b.ctx, b.bounced, txn.Options{Isolation: isolation.Serializable, Retry: &retry.Policy{MaxAttempts: 50}},
			func(ctx context.Context, tx pgx.Tx) error {
				var n int
				if err := tx.QueryRow(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, "UPDATE counter SET n = $1 WHERE id = 1", n+1)
				return err
			})
	})
	var n int
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n))
	require.Equal(t, workers*each, n)
}

func TestCommitErrorThroughTransactionPooling(t *testing.T) {
	t.Parallel()
	b := setup(t, pgbouncer.Transaction)
	_, err := b.direct.Exec(b.ctx, "CREATE TABLE items (id int PRIMARY KEY)")
	require.NoError(t, err)
	errNo := errors.New("no")
	require.ErrorIs(t, txn.WithTx(b.ctx, b.bounced, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items VALUES (1)")
		if err != nil {
			return err
		}
		return errNo
	}), errNo)
	err = txn.WithTx(b.ctx, b.bounced, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, "INSERT INTO items VALUES (1)")
		_, err := tx.Exec(ctx, "INSERT INTO items VALUES (1)")
		return err
	})
	require.Equal(t, pgerrcode.UniqueViolation, retry.SQLState(err))
	var n int
	require.NoError(t, b.direct.QueryRow(b.ctx, "SELECT count(*) FROM items").Scan(&n))
	require.Zero(t, n)
}

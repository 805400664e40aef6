package txn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func ExampleWithTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 0)`)

	// Move 30 from account 1 to 2. At SERIALIZABLE a concurrent transfer
	// can make the server abort this one; WithTx then runs it again.
	err = txn.WithTx(ctx, pool, txn.Options{Isolation: isolation.Serializable},
		func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - 30 WHERE id = 1"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + 30 WHERE id = 2")
			return err
		})
	fmt.Println("transfer:", err)

	var a, b int
	_ = pool.QueryRow(ctx, "SELECT (SELECT balance FROM accounts WHERE id = 1), (SELECT balance FROM accounts WHERE id = 2)").Scan(&a, &b)
	fmt.Println(a, b)
	// Output:
	// transfer: <nil>
	// 70 30
}

func ExampleWithTxValue() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	n, err := txn.WithTxValue(ctx, pool, txn.Options{ReadOnly: true},
		func(ctx context.Context, tx pgx.Tx) (int, error) {
			var n int
			err := tx.QueryRow(ctx, "SELECT 6 * 7").Scan(&n)
			return n, err
		})
	fmt.Println(n, err)
	// Output: 42 <nil>
}

func ExampleQ() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, "CREATE TABLE notes (body text)")

	// add works alone and inside a transaction, unchanged.
	add := func(ctx context.Context, body string) error {
		_, err := txn.Q(ctx, pool).Exec(ctx, "INSERT INTO notes VALUES ($1)", body)
		return err
	}
	_ = add(ctx, "alone")
	_ = txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		_ = add(ctx, "in a transaction that rolls back")
		return errors.New("changed my mind")
	})

	var n int
	_ = pool.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n)
	fmt.Println(n)
	// Output: 1
}

func ExampleFromContext() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	_, inTx := txn.FromContext(ctx)
	fmt.Println("outside:", inTx)
	_ = txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, _ pgx.Tx) error {
		_, inTx := txn.FromContext(ctx)
		fmt.Println("inside:", inTx)
		return nil
	})
	// Output:
	// outside: false
	// inside: true
}

func ExampleAfterCommit() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	err = txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		txn.AfterCommit(ctx, func(context.Context) { fmt.Println("send the confirmation email") })
		fmt.Println("in the transaction")
		return nil
	})
	fmt.Println("WithTx returned", err)
	// Output:
	// in the transaction
	// send the confirmation email
	// WithTx returned <nil>
}

func ExampleWithTx_nested() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, "CREATE TABLE log (msg text)")

	_ = txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, "INSERT INTO log VALUES ('kept')")
		// The nested call runs in a savepoint: its failure undoes only its own work.
		err := txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			_, _ = tx.Exec(ctx, "INSERT INTO log VALUES ('undone')")
			return errors.New("optional step failed")
		})
		fmt.Println("nested:", err)
		return nil
	})
	var msgs []string
	rows, _ := pool.Query(ctx, "SELECT msg FROM log")
	msgs, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	fmt.Println(msgs)
	// Output:
	// nested: optional step failed
	// [kept]
}

func ExampleOptions_retry() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	attempts := 0
	err = txn.WithTx(ctx, pool, txn.Options{Retry: &retry.Policy{MaxAttempts: 3}},
		func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			// Stand-in for a serialization failure under contention.
			_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`)
			return err
		})
	fmt.Println(attempts, errors.Is(err, retry.ErrExhausted), retry.SQLState(err))
	// Output: 3 true 40001
}

func ExampleNewSlogObserver() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	// A logger without timestamps, so that the output below is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "wait" {
				return slog.Attr{}
			}
			return a
		},
	}))
	opts := txn.Options{Name: "transfer", Observer: txn.NewSlogObserver(logger), Retry: &retry.Policy{MaxAttempts: 2}}
	attempts := 0
	_ = txn.WithTx(ctx, pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if attempts == 1 {
			_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$`)
			return err
		}
		return nil
	})
	// Output:
	// level=INFO msg="txn: retrying transaction" name=transfer attempt=1 sqlstate=40001 error="ERROR: conflict (SQLSTATE 40001)"
}

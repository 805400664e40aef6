package locks_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func ExampleOptions_Apply() {
	o := locks.Options{Strength: locks.ForNoKeyUpdate, Of: []string{"j"}, Wait: locks.SkipLocked}
	q, err := o.Apply("SELECT j.id FROM jobs j JOIN queues q ON q.id = j.queue ORDER BY j.id LIMIT 10; -- next batch")
	fmt.Println(q, err)

	_, err = o.Apply("SELECT id FROM jobs FOR UPDATE")
	fmt.Println(err)
	// Output:
	// SELECT j.id FROM jobs j JOIN queues q ON q.id = j.queue ORDER BY j.id LIMIT 10 FOR NO KEY UPDATE OF "j" SKIP LOCKED -- next batch <nil>
	// locks: the query already has a locking clause
}

func ExampleQueryRow() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts VALUES (1, 100)`)

	// Outside a transaction a locking read would release its lock at once.
	var balance int
	err = locks.QueryRow(ctx, pool, locks.Options{}, "SELECT balance FROM accounts WHERE id = $1", 1).Scan(&balance)
	fmt.Println(errors.Is(err, locks.ErrNotInTx))

	err = txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		// The pool is given, the ctx's transaction is used: the row stays
		// locked until COMMIT, so the balance cannot change under us.
		err := locks.QueryRow(ctx, pool, locks.Options{}, "SELECT balance FROM accounts WHERE id = $1", 1).Scan(&balance)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE accounts SET balance = $1 WHERE id = $2", balance-30, 1)
		return err
	})
	fmt.Println(balance-30, err)
	// Output:
	// true
	// 70 <nil>
}

func ExampleByKey() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
		INSERT INTO accounts VALUES (1, 100), (2, 100)`)

	// A transfer from 2 to 1 and one from 1 to 2 both lock 1 first, then
	// 2: they cannot deadlock.
	transfer := func(from, to, amount int) error {
		return txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			if _, err := locks.ByKey(ctx, tx, pgx.Identifier{"accounts"}, "id", []int{from, to}, locks.Options{}); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE accounts SET balance = balance + CASE id WHEN $1 THEN -$3::int ELSE $3 END
				WHERE id IN ($1, $2)`, from, to, amount)
			return err
		})
	}
	fmt.Println(transfer(2, 1, 30), transfer(1, 2, 10))
	var b1, b2 int
	_ = pool.QueryRow(ctx, "SELECT (SELECT balance FROM accounts WHERE id = 1), (SELECT balance FROM accounts WHERE id = 2)").Scan(&b1, &b2)
	fmt.Println(b1, b2)
	// Output:
	// <nil> <nil>
	// 120 80
}

func ExampleQueue_Claim() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `CREATE TABLE jobs (id int PRIMARY KEY, task text NOT NULL, done_at timestamptz);
		INSERT INTO jobs (id, task) VALUES (1, 'resize'), (2, 'email'), (3, 'bill')`)

	type Job struct {
		ID     int
		Task   string
		DoneAt *time.Time `db:"done_at"`
	}
	q := locks.Queue[Job]{
		Table: pgx.Identifier{"jobs"},
		Key:   "id",
		Ready: "done_at IS NULL",
		Done:  locks.Done{SetNow: []string{"done_at"}},
	}
	for {
		n, err := q.Claim(ctx, pool, 2, func(ctx context.Context, tx pgx.Tx, jobs []Job) error {
			for _, j := range jobs {
				fmt.Println("doing", j.ID, j.Task)
			}
			return nil // returning an error would put the jobs back
		})
		if err != nil || n == 0 {
			fmt.Println("queue empty", err)
			return
		}
	}
	// Output:
	// doing 1 resize
	// doing 2 email
	// doing 3 bill
	// queue empty <nil>
}

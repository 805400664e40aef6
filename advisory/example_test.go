package advisory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func ExampleAcquire() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	l, err := advisory.Acquire(ctx, pool, "nightly-billing", advisory.Options{})
	if err != nil {
		panic(err)
	}

	// Another process trying now finds it taken.
	_, err = advisory.TryAcquire(ctx, pool, "nightly-billing", advisory.Options{})
	fmt.Println(errors.Is(err, advisory.ErrNotAcquired))

	// ... the billing run, stopping if <-l.Lost() fires ...
	fmt.Println(l.Release(ctx))
	// Output:
	// true
	// <nil>
}

func ExampleWithLock() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	err = advisory.WithLock(ctx, pool, "rebuild-search-index", advisory.Options{}, func(ctx context.Context) error {
		// ctx is cancelled with cause advisory.ErrLockLost if the lock's
		// connection dies while this runs.
		fmt.Println("rebuilding")
		return nil
	})
	fmt.Println(err)
	// Output:
	// rebuilding
	// <nil>
}

func ExampleLockTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	err = txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		// Held until this transaction commits or rolls back; works through
		// PgBouncer in transaction mode.
		if err := advisory.LockTx(ctx, tx, "account:42", advisory.Options{}); err != nil {
			return err
		}
		ok, err := advisory.TryLockTx(ctx, tx, "account:43", advisory.Options{})
		fmt.Println("second lock:", ok)
		return err
	})
	fmt.Println(err)
	// Output:
	// second lock: true
	// <nil>
}

func ExampleLead() {
	ctx, stop := context.WithCancel(context.Background())
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	defer stop()

	err = advisory.Lead(ctx, pool, "scheduler", advisory.Options{}, func(ctx context.Context, term int64) error {
		fmt.Println("leading, term", term)
		// A real leader runs its job until ctx ends, which happens when
		// leadership is lost or when Lead's ctx ends. Here: stop at once.
		stop()
		<-ctx.Done()
		return ctx.Err()
	})
	fmt.Println(err)
	// Output:
	// leading, term 1
	// <nil>
}

// Example_fencing shows the fencing pattern: the token of each acquisition
// is stored with the data it protects, and a write carrying an older token
// than the stored one changes nothing.
func Example_fencing() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE report (id int PRIMARY KEY, body text, fence bigint NOT NULL);
		INSERT INTO report VALUES (1, '', 0)`); err != nil {
		panic(err)
	}
	write := func(token int64, body string) int64 {
		tag, err := pool.Exec(ctx, `UPDATE report SET body = $2, fence = $3 WHERE id = $1 AND fence <= $3`, 1, body, token)
		if err != nil {
			panic(err)
		}
		return tag.RowsAffected()
	}

	first, err := advisory.Acquire(ctx, pool, "report", advisory.Options{Fence: true})
	if err != nil {
		panic(err)
	}
	token1 := first.Token()
	_ = first.Release(ctx) // imagine instead: first's connection died and it has not noticed yet

	second, err := advisory.Acquire(ctx, pool, "report", advisory.Options{Fence: true})
	if err != nil {
		panic(err)
	}
	defer func() { _ = second.Release(ctx) }()
	fmt.Println("tokens:", token1, second.Token())
	fmt.Println("new holder wrote:", write(second.Token(), "fresh"))
	fmt.Println("stale holder wrote:", write(token1, "stale"))
	// Output:
	// tokens: 1 2
	// new holder wrote: 1
	// stale holder wrote: 0
}

func ExampleKey() {
	k, err := advisory.Key("nightly-billing")
	fmt.Println(k, err)
	_, err = advisory.Key("")
	fmt.Println(errors.Is(err, advisory.ErrInvalid))
	// Output:
	// -3003901418071974465 <nil>
	// true
}

func ExampleInspect() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	l, err := advisory.Acquire(ctx, pool, "migrations", advisory.Options{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = l.Release(ctx) }()

	locks, err := advisory.Inspect(ctx, pool, "migrations", "nightly-billing")
	if err != nil {
		panic(err)
	}
	for _, li := range locks {
		fmt.Printf("%s held=%v by the lock's backend: %v\n", li.Name, li.Granted, li.PID == l.PID())
	}
	// Output:
	// migrations held=true by the lock's backend: true
}

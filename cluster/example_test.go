package cluster_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func Example() {
	ctx := context.Background()
	// In a service: cluster.Open(ctx, []string{primaryDSN, replicaDSN}, ...).
	c, err := cluster.Open(ctx, []string{pgtest.DatabaseURL()}, cluster.Options{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = c.Close(ctx) }()
	_, _ = c.Exec(ctx, "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")

	// A read-write transaction runs on the primary.
	err = txn.WithTx(ctx, c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO notes VALUES (1, 'hello')")
		return err
	})
	fmt.Println("write:", err)

	// A read-only one runs on a replica within the lag bound; this
	// cluster has none, so it runs on the primary.
	body, err := txn.WithTxValue(ctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (string, error) {
		var s string
		err := tx.QueryRow(ctx, "SELECT body FROM notes WHERE id = 1").Scan(&s)
		return s, err
	})
	fmt.Println("read:", body, err)
	for _, n := range c.Nodes() {
		fmt.Println(n.Role, n.Writes, n.Reads)
	}
	// Output:
	// write: <nil>
	// read: hello <nil>
	// primary 1 1
}

func ExampleSession() {
	ctx := context.Background()
	c, err := cluster.Open(ctx, []string{pgtest.DatabaseURL()}, cluster.Options{})
	if err != nil {
		panic(err)
	}
	defer func() { _ = c.Close(ctx) }()
	_, _ = c.Exec(ctx, "CREATE TABLE carts (id int PRIMARY KEY, items int NOT NULL)")

	// Request 1: a write with a Session in ctx; hand its token to the
	// client (a cookie, a header).
	sess := cluster.NewSession(0)
	err = txn.WithTx(cluster.WithSession(ctx, sess), c, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO carts VALUES (1, 3)")
		return err
	})
	token := sess.Token()
	fmt.Println("write:", err, "token set:", token != "")

	// Request 2: the client sends the token back; reads with it see the
	// write, on a replica that has replayed it or on the primary.
	resumed, err := cluster.ResumeSession(token)
	if err != nil {
		panic(err) // a malformed token: ErrInvalid
	}
	rctx := cluster.WithSession(ctx, resumed)
	items, err := txn.WithTxValue(rctx, c, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (int, error) {
		var n int
		err := tx.QueryRow(ctx, "SELECT items FROM carts WHERE id = 1").Scan(&n)
		return n, err
	})
	fmt.Println("read:", items, err)
	// Output:
	// write: <nil> token set: true
	// read: 3 <nil>
}

func ExampleParsePosition() {
	p, err := cluster.ParsePosition("16/B374D848")
	fmt.Println(uint64(p), err)
	_, err = cluster.ParsePosition("not a position")
	fmt.Println(err)
	// Output:
	// 97500059720 <nil>
	// cluster: invalid input: position "not a position" is not of the form X/X (hexadecimal, as pg_lsn)
}

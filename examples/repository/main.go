// Command repository shows a service method calling two repository methods
// inside one transaction, where each repository method also works alone.
//
//	go run ./examples/repository
//
// It uses the -dsn flag or DATABASE_URL; with neither it starts a throwaway
// PostgreSQL cluster from the local server binaries and removes it at exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/examples/internal/cli"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/txn"
)

// Orders and Stock are repositories. Their methods run their statements
// through txn.Q: inside a service's transaction they join it, alone they
// run on the pool.
type Orders struct{ db txn.Querier }

func (r Orders) Create(ctx context.Context, sku string, qty int) (int64, error) {
	var id int64
	err := txn.Q(ctx, r.db).QueryRow(ctx,
		"INSERT INTO orders (sku, qty) VALUES ($1, $2) RETURNING id", sku, qty).Scan(&id)
	return id, err
}

func (r Orders) Count(ctx context.Context) (int, error) {
	var n int
	err := txn.Q(ctx, r.db).QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n)
	return n, err
}

type Stock struct{ db txn.Querier }

// ErrOutOfStock is returned when a reservation asks for more than is left.
var ErrOutOfStock = errors.New("out of stock")

func (r Stock) Reserve(ctx context.Context, sku string, qty int) error {
	tag, err := txn.Q(ctx, r.db).Exec(ctx,
		"UPDATE stock SET available = available - $2 WHERE sku = $1 AND available >= $2", sku, qty)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("reserve %d of %s: %w", qty, sku, ErrOutOfStock)
	}
	return nil
}

func (r Stock) Available(ctx context.Context, sku string) (int, error) {
	var n int
	err := txn.Q(ctx, r.db).QueryRow(ctx, "SELECT available FROM stock WHERE sku = $1", sku).Scan(&n)
	return n, err
}

// Shop is the service: placing an order reserves stock and records the
// order, both or neither.
type Shop struct {
	pool   *pgxpool.Pool
	orders Orders
	stock  Stock
}

func (s Shop) PlaceOrder(ctx context.Context, sku string, qty int) (int64, error) {
	return txn.WithTxValue(ctx, s.pool, txn.Options{Name: "place-order", Isolation: isolation.RepeatableRead},
		func(ctx context.Context, _ pgx.Tx) (int64, error) {
			if err := s.stock.Reserve(ctx, sku, qty); err != nil {
				return 0, err
			}
			id, err := s.orders.Create(ctx, sku, qty)
			if err != nil {
				return 0, err
			}
			txn.AfterCommit(ctx, func(context.Context) { fmt.Printf("  order %d confirmed (after commit)\n", id) })
			return id, nil
		})
}

func main() {
	dsn := flag.String("dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	flag.Parse()
	if err := run(context.Background(), *dsn); err != nil {
		fmt.Fprintln(os.Stderr, "repository:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn string) (err error) {
	dsn, _, stopServer, err := cli.Database(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopServer()) }()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `
		DROP TABLE IF EXISTS orders, stock;
		CREATE TABLE stock (sku text PRIMARY KEY, available int NOT NULL CHECK (available >= 0));
		CREATE TABLE orders (id bigserial PRIMARY KEY, sku text NOT NULL, qty int NOT NULL);
		INSERT INTO stock VALUES ('widget', 5)`); err != nil {
		return err
	}
	shop := Shop{pool: pool, orders: Orders{db: pool}, stock: Stock{db: pool}}

	for _, qty := range []int{3, 4, 2} {
		id, err := shop.PlaceOrder(ctx, "widget", qty)
		switch {
		case errors.Is(err, ErrOutOfStock):
			fmt.Printf("order for %d widgets refused: %v\n", qty, err)
		case err != nil:
			return err
		default:
			fmt.Printf("order %d for %d widgets placed\n", id, qty)
		}
	}

	// The same repository methods, alone, outside any transaction.
	left, err := shop.stock.Available(ctx, "widget")
	if err != nil {
		return err
	}
	n, err := shop.orders.Count(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("widgets left: %d, orders: %d\n", left, n)
	if left != 0 || n != 2 {
		return fmt.Errorf("expected 0 widgets left and 2 orders")
	}
	return nil
}

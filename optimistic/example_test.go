package optimistic_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/tests/pgtest"
)

func ExampleTable_Update() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL, version int NOT NULL);
		INSERT INTO docs VALUES (1, 'draft', 1)`)
	docs := optimistic.Table{Name: pgx.Identifier{"docs"}, Key: "id"}

	// Two editors read version 1. The first save wins...
	v, err := docs.Update(ctx, pool, 1, 1, map[string]any{"body": "first edit"})
	fmt.Println(v, err)

	// ...the second learns it is stale, and what the row is at now.
	_, err = docs.Update(ctx, pool, 1, 1, map[string]any{"body": "second edit"})
	var conflict *optimistic.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: now at version", conflict.Current)
	}

	// A missing row is another answer, in the same round trip.
	_, err = docs.Update(ctx, pool, 2, 1, map[string]any{"body": "x"})
	fmt.Println(errors.Is(err, optimistic.ErrNotFound), errors.Is(err, optimistic.ErrConflict))
	// Output:
	// 2 <nil>
	// conflict: now at version 2
	// true false
}

func ExampleModify() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.DatabaseURL())
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	_, _ = pool.Exec(ctx, `CREATE TABLE items (sku text PRIMARY KEY, stock int NOT NULL, version bigint NOT NULL);
		INSERT INTO items VALUES ('apple', 10, 1)`)

	type Item struct {
		SKU     string
		Stock   int
		Version int64
	}
	items := optimistic.Table{Name: pgx.Identifier{"items"}, Key: "sku"}
	errOutOfStock := errors.New("out of stock")
	reserve := func(n int) (Item, error) {
		// Read, change, save if nobody saved in between, else start over.
		return optimistic.Modify(ctx, pool, items, "apple", optimistic.ModifyOptions{}, func(it *Item) error {
			if it.Stock < n {
				return errOutOfStock
			}
			it.Stock -= n
			return nil
		})
	}
	it, err := reserve(3)
	fmt.Printf("%+v %v\n", it, err)
	_, err = reserve(8)
	fmt.Println(err)
	// Output:
	// {SKU:apple Stock:7 Version:2} <nil>
	// out of stock
}

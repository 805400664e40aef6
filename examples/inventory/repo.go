package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// Item is a row of inventory_items.
type Item struct {
	SKU     string
	Name    string
	Stock   int
	Version int64
}

// errOutOfStock declines a reservation. It comes from the change function,
// so Modify returns it as it is, without retrying, and WithTx rolls back.
var errOutOfStock = errors.New("out of stock")

var items = optimistic.Table{Name: pgx.Identifier{"inventory_items"}, Key: "sku"}

// Repo is the inventory repository. Its methods run in the caller's
// transaction when ctx carries one, and in their own otherwise.
type Repo struct {
	pool      *pgxpool.Pool
	naive     bool         // save without the version check (see modify)
	conflicts atomic.Int64 // versioned saves that lost the race and were retried
}

// modifyOptions retries a lost race at once and then with growing, jittered
// waits; twenty attempts ride out the contention of a few dozen shoppers on
// one item.
func (r *Repo) modifyOptions() optimistic.ModifyOptions {
	return optimistic.ModifyOptions{
		Retry:      &retry.Policy{MaxAttempts: 20, InitialInterval: time.Millisecond, MaxInterval: 50 * time.Millisecond},
		OnConflict: func(*optimistic.ConflictError) { r.conflicts.Add(1) },
	}
}

// Reserve takes qty of an item out of stock and records the order, both in
// one transaction: the order exists if and only if the stock went down.
func (r *Repo) Reserve(ctx context.Context, sku string, qty int) (Item, error) {
	return txn.WithTxValue(ctx, r.pool, txn.Options{Name: "inventory.reserve"}, func(ctx context.Context, tx pgx.Tx) (Item, error) {
		it, err := r.modify(ctx, sku, func(it *Item) error {
			if it.Stock < qty {
				return fmt.Errorf("%s: %d left, %d wanted: %w", it.SKU, it.Stock, qty, errOutOfStock)
			}
			it.Stock -= qty
			return nil
		})
		if err != nil {
			return Item{}, err
		}
		_, err = tx.Exec(ctx, `INSERT INTO inventory_orders (sku, qty) VALUES ($1, $2)`, sku, qty)
		return it, err
	})
}

// Restock adds qty to an item's stock and records the delivery.
func (r *Repo) Restock(ctx context.Context, sku string, qty int) (Item, error) {
	return txn.WithTxValue(ctx, r.pool, txn.Options{Name: "inventory.restock"}, func(ctx context.Context, tx pgx.Tx) (Item, error) {
		it, err := r.modify(ctx, sku, func(it *Item) error {
			it.Stock += qty
			return nil
		})
		if err != nil {
			return Item{}, err
		}
		_, err = tx.Exec(ctx, `INSERT INTO inventory_restocks (sku, qty) VALUES ($1, $2)`, sku, qty)
		return it, err
	})
}

// modify is the read-change-save of one item: optimistic.Modify, or with
// -naive the same steps without the version check, as a repository without
// optimistic locking does them. The naive save overwrites whatever another
// shopper saved since the read: watch the stock check fail.
func (r *Repo) modify(ctx context.Context, sku string, change func(*Item) error) (Item, error) {
	if !r.naive {
		return optimistic.Modify(ctx, r.pool, items, sku, r.modifyOptions(), change)
	}
	q := txn.Q(ctx, r.pool)
	rows, err := q.Query(ctx, `SELECT * FROM inventory_items WHERE sku = $1`, sku)
	if err != nil {
		return Item{}, err
	}
	it, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Item])
	if err != nil {
		return Item{}, err
	}
	if err := change(&it); err != nil {
		return Item{}, err
	}
	err = q.QueryRow(ctx, `UPDATE inventory_items SET stock = $1, version = version + 1 WHERE sku = $2 RETURNING version`,
		it.Stock, sku).Scan(&it.Version)
	return it, err
}

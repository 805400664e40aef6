package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/examples/internal/report"
)

// check is one invariant and whether it held.
type check = report.Check

// itemRecord is an item with what its orders and restocks add up to.
type itemRecord struct {
	sku                       string
	stock                     int
	version                   int64
	ordered, orders           int
	restocked, restockRecords int
}

// verify checks every item against its orders and restocks, and those
// against what the shoppers saw committed.
func verify(ctx context.Context, pool *pgxpool.Pool, cfg config, res *results) ([]check, error) {
	rows, err := pool.Query(ctx, `SELECT i.sku, i.stock, i.version,
		(SELECT coalesce(sum(qty), 0) FROM inventory_orders o WHERE o.sku = i.sku),
		(SELECT count(*) FROM inventory_orders o WHERE o.sku = i.sku),
		(SELECT coalesce(sum(qty), 0) FROM inventory_restocks r WHERE r.sku = i.sku),
		(SELECT count(*) FROM inventory_restocks r WHERE r.sku = i.sku)
		FROM inventory_items i ORDER BY i.sku`)
	if err != nil {
		return nil, err
	}
	var r itemRecord
	var unbalanced, negative, versions, unseen []string
	_, err = pgx.ForEachRow(rows, []any{&r.sku, &r.stock, &r.version, &r.ordered, &r.orders, &r.restocked, &r.restockRecords}, func() error {
		if want := cfg.Stock + r.restocked - r.ordered; r.stock != want {
			unbalanced = append(unbalanced, fmt.Sprintf("%s holds %d, its orders and restocks say %d", r.sku, r.stock, want))
		}
		if r.stock < 0 {
			negative = append(negative, fmt.Sprintf("%s at %d", r.sku, r.stock))
		}
		writes := r.orders + r.restockRecords
		if r.version != int64(1+writes) {
			versions = append(versions, fmt.Sprintf("%s at version %d after %d writes", r.sku, r.version, writes))
		}
		if r.ordered != res.reserved[r.sku] || r.restocked != res.restocked[r.sku] || writes != res.writes[r.sku] {
			unseen = append(unseen, fmt.Sprintf("%s: %d ordered and %d restocked in %d writes; the shoppers saw %d, %d and %d committed",
				r.sku, r.ordered, r.restocked, writes, res.reserved[r.sku], res.restocked[r.sku], res.writes[r.sku]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	all := fmt.Sprintf("all %d items", cfg.Items)
	return []check{
		{Name: "stock = start + restocks - orders", OK: len(unbalanced) == 0, Detail: orAll(unbalanced, all)},
		{Name: "no stock below zero", OK: len(negative) == 0, Detail: orAll(negative, all)},
		{Name: "every write moved the version on by one", OK: len(versions) == 0, Detail: orAll(versions, all)},
		{Name: "orders and restocks are the ones committed", OK: len(unseen) == 0, Detail: orAll(unseen, all)},
	}, nil
}

func orAll(problems []string, all string) string {
	if len(problems) == 0 {
		return all
	}
	return strings.Join(problems, "; ")
}

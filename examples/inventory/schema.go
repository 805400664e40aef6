package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The items have no CHECK (stock >= 0) on purpose: the check in the
// repository is what keeps stock from going negative, and the final checks
// verify that it did. Every item starts at version 1.
var schema = []string{
	`DROP TABLE IF EXISTS inventory_orders, inventory_restocks, inventory_items`,
	`CREATE TABLE inventory_items (
		sku     text   PRIMARY KEY,
		name    text   NOT NULL,
		stock   int    NOT NULL,
		version bigint NOT NULL DEFAULT 1
	)`,
	`CREATE TABLE inventory_orders (
		id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		sku text   NOT NULL REFERENCES inventory_items,
		qty int    NOT NULL CHECK (qty > 0)
	)`,
	`CREATE TABLE inventory_restocks (
		id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		sku text   NOT NULL REFERENCES inventory_items,
		qty int    NOT NULL CHECK (qty > 0)
	)`,
}

// setup drops and recreates the tables and stocks items sku-1..sku-n.
func setup(ctx context.Context, pool *pgxpool.Pool, items, stock int) error {
	for _, stmt := range schema {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("creating the tables: %w", err)
		}
	}
	_, err := pool.Exec(ctx, `INSERT INTO inventory_items (sku, name, stock)
		SELECT 'sku-' || g, 'item ' || g, $2 FROM generate_series(1, $1::int) g`, items, stock)
	if err != nil {
		return fmt.Errorf("stocking the items: %w", err)
	}
	return nil
}

func sku(i int) string { return fmt.Sprintf("sku-%d", i) }

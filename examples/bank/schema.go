package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// initialBalance is every account's balance at the start.
const initialBalance = 1000

// The accounts have no CHECK (balance >= 0) on purpose: the funds check
// inside the transaction is what keeps balances from going negative, and
// the final checks verify that it did. The ledger's primary key is the
// transfer id, chosen before the first attempt: a transfer applied twice
// would fail with a unique violation rather than go unnoticed.
var schema = []string{
	`DROP TABLE IF EXISTS bank_ledger, bank_accounts`,
	`CREATE TABLE bank_accounts (
		id      int    PRIMARY KEY,
		balance bigint NOT NULL
	)`,
	`CREATE TABLE bank_ledger (
		id           uuid        PRIMARY KEY,
		from_account int         NOT NULL REFERENCES bank_accounts,
		to_account   int         NOT NULL REFERENCES bank_accounts,
		amount       bigint      NOT NULL CHECK (amount > 0),
		created_at   timestamptz NOT NULL DEFAULT now()
	)`,
}

// setup drops and recreates the tables and opens accounts 1..n.
func setup(ctx context.Context, pool *pgxpool.Pool, accounts int) error {
	for _, stmt := range schema {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("creating the tables: %w", err)
		}
	}
	_, err := pool.Exec(ctx,
		`INSERT INTO bank_accounts (id, balance) SELECT g, $2 FROM generate_series(1, $1::int) g`,
		accounts, initialBalance)
	if err != nil {
		return fmt.Errorf("opening the accounts: %w", err)
	}
	return nil
}

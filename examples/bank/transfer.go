package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxAmount bounds a single transfer; with initialBalance it makes a
// declined transfer (insufficient funds) rare but not impossible.
const maxAmount = 100

// errInsufficientFunds declines a transfer. It is not a database error, so
// WithTx rolls back and returns it without retrying.
var errInsufficientFunds = errors.New("insufficient funds")

// transferReq is one transfer. Its ID is chosen before the first attempt
// and reused by every retry: it is the ledger row's primary key.
type transferReq struct {
	ID       uuid.UUID
	From, To int
	Amount   int64
}

// transfer moves the amount in one transaction: it reads both balances,
// checks funds, writes the new balances it computed, and records the
// transfer in the ledger. Writing computed balances (rather than
// balance = balance - $1) is the read-modify-write that an application
// working through an ORM does; it is only safe at an isolation level that
// stops two transfers from both acting on the same balance they read.
//
// WithTx may call it more than once: it keeps no state between calls.
func transfer(ctx context.Context, tx pgx.Tx, r transferReq) error {
	balances, err := readBalances(ctx, tx, r.From, r.To)
	if err != nil {
		return err
	}
	if balances[r.From] < r.Amount {
		return fmt.Errorf("account %d has %d, cannot send %d: %w", r.From, balances[r.From], r.Amount, errInsufficientFunds)
	}
	balances[r.From] -= r.Amount
	balances[r.To] += r.Amount

	// Update the two rows in id order, whatever the direction, so that two
	// transfers over the same pair take their row locks in the same order
	// and cannot deadlock each other. All three writes go in one round trip.
	lo, hi := min(r.From, r.To), max(r.From, r.To)
	b := &pgx.Batch{}
	for _, id := range []int{lo, hi} {
		b.Queue(`UPDATE bank_accounts SET balance = $2 WHERE id = $1`, id, balances[id]).Exec(oneRow)
	}
	b.Queue(`INSERT INTO bank_ledger (id, from_account, to_account, amount) VALUES ($1, $2, $3, $4)`,
		r.ID, r.From, r.To, r.Amount).Exec(oneRow)
	return tx.SendBatch(ctx, b).Close()
}

func readBalances(ctx context.Context, tx pgx.Tx, a, b int) (map[int]int64, error) {
	rows, err := tx.Query(ctx, `SELECT id, balance FROM bank_accounts WHERE id IN ($1, $2)`, a, b)
	if err != nil {
		return nil, err
	}
	balances := make(map[int]int64, 2)
	var (
		id      int
		balance int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &balance}, func() error {
		balances[id] = balance
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(balances) != 2 {
		return nil, fmt.Errorf("accounts %d and %d: found %d of them", a, b, len(balances))
	}
	return balances, nil
}

func oneRow(tag pgconn.CommandTag) error {
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s affected %d rows, want 1", tag, tag.RowsAffected())
	}
	return nil
}

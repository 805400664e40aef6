package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/examples/internal/report"
)

// check is one invariant and whether it held.
type check = report.Check

// verify checks the data against what the workers were told. interrupted
// relaxes the one check that a cancelled run cannot meet.
func verify(ctx context.Context, pool *pgxpool.Pool, cfg config, res *results, interrupted bool) ([]check, error) {
	acquired, waited := settledAcquired(ctx, pool)
	detail := fmt.Sprintf("%d still acquired", acquired)
	if waited > 0 {
		detail += fmt.Sprintf(" (after waiting %v for broken ones to close)", waited.Round(time.Millisecond))
	}
	checks := []check{{Name: "every connection back in the pool", OK: acquired == 0, Detail: detail}}

	balances, err := checkBalances(ctx, pool, cfg.Accounts)
	if err != nil {
		return nil, err
	}
	checks = append(checks, balances...)

	ledger, err := checkLedger(ctx, pool, res.total)
	if err != nil {
		return nil, err
	}
	checks = append(checks, ledger)

	// Each retry WithTx reports must be one more run of fn. An interrupt
	// can end the loop after a retry was announced but before it ran.
	t := res.total
	extra, reported := t.attempts-t.calls, t.totalRetries()
	checks = append(checks, check{
		Name:   "retries reported = extra runs of fn",
		OK:     extra == reported || interrupted,
		Detail: fmt.Sprintf("fn ran %d times for %d calls; the Observer saw %d retries", t.attempts, t.calls, reported),
	})
	return checks, nil
}

// settledAcquired returns how many connections are still out of the pool.
// Every worker has returned, so every WithTx call has handed its connection
// back; but the pool counts a connection it is discarding (broken, or
// released mid-transaction, as after a cancelled ctx) as acquired until it
// has finished closing it, in the background. Wait for those, longer than
// pgxpool's 15s close timeout; a connection still out after that leaked.
func settledAcquired(ctx context.Context, pool *pgxpool.Pool) (int32, time.Duration) {
	start := time.Now()
	for {
		n := pool.Stat().AcquiredConns()
		if n == 0 || time.Since(start) > 20*time.Second || ctx.Err() != nil {
			return n, time.Since(start).Truncate(time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkBalances checks that no money was created or destroyed, that no
// account is overdrawn, and that every balance is what the ledger says.
func checkBalances(ctx context.Context, pool *pgxpool.Pool, accounts int) ([]check, error) {
	var total, lowest int64
	err := pool.QueryRow(ctx, `SELECT coalesce(sum(balance), 0), coalesce(min(balance), 0) FROM bank_accounts`).Scan(&total, &lowest)
	if err != nil {
		return nil, err
	}
	want := int64(accounts) * initialBalance

	// Each account's balance against its opening balance plus what the
	// ledger says came in minus what went out.
	rows, err := pool.Query(ctx, `
		SELECT a.id, a.balance, $1::bigint
		       + coalesce((SELECT sum(amount) FROM bank_ledger WHERE to_account = a.id), 0)
		       - coalesce((SELECT sum(amount) FROM bank_ledger WHERE from_account = a.id), 0)
		FROM bank_accounts a ORDER BY a.id`, initialBalance)
	if err != nil {
		return nil, err
	}
	var (
		id                  int
		balance, fromLedger int64
		checked             int
		mismatched          []string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &balance, &fromLedger}, func() error {
		checked++
		if balance != fromLedger {
			mismatched = append(mismatched, fmt.Sprintf("account %d holds %d, the ledger says %d", id, balance, fromLedger))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	agree := fmt.Sprintf("all %d accounts", checked)
	if len(mismatched) > 0 {
		agree = sample(mismatched, len(mismatched), "accounts disagree")
	}
	return []check{
		{
			Name:   "total balance unchanged",
			OK:     total == want,
			Detail: fmt.Sprintf("%d at the start, %d now", want, total),
		},
		{
			Name:   "no account overdrawn",
			OK:     lowest >= 0,
			Detail: fmt.Sprintf("lowest balance %d", lowest),
		},
		{
			Name:   "balances agree with the ledger",
			OK:     len(mismatched) == 0,
			Detail: agree,
		},
	}, nil
}

// checkLedger checks that the ledger holds every transfer WithTx reported
// committed and nothing else. A transfer whose outcome WithTx reported
// unknown may be there or not.
func checkLedger(ctx context.Context, pool *pgxpool.Pool, s *stats) (check, error) {
	rows, err := pool.Query(ctx, `SELECT id FROM bank_ledger`)
	if err != nil {
		return check{}, err
	}
	inLedger, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return check{}, err
	}
	ledger := make(map[uuid.UUID]bool, len(inLedger))
	for _, id := range inLedger {
		ledger[id] = true
	}
	committed := make(map[uuid.UUID]bool, len(s.committed))
	for _, id := range s.committed {
		committed[id] = true
	}
	unknown := make(map[uuid.UUID]bool, len(s.unknown))
	for _, id := range s.unknown {
		unknown[id] = true
	}

	var missing, extra []string
	for id := range committed {
		if !ledger[id] {
			missing = append(missing, id.String())
		}
	}
	for id := range ledger {
		if !committed[id] && !unknown[id] {
			extra = append(extra, id.String())
		}
	}
	c := check{
		Name: "ledger holds exactly the committed transfers",
		OK:   len(missing) == 0 && len(extra) == 0 && len(committed) == len(s.committed),
	}
	switch {
	case c.OK:
		c.Detail = fmt.Sprintf("%d committed, %d ledger rows", len(committed), len(ledger))
		if len(unknown) > 0 {
			c.Detail += fmt.Sprintf(" (%d with an unknown outcome)", len(unknown))
		}
	default:
		var d []string
		if len(missing) > 0 {
			d = append(d, sample(missing, len(missing), "reported committed but not in the ledger"))
		}
		if len(extra) > 0 {
			d = append(d, sample(extra, len(extra), "in the ledger but not reported committed"))
		}
		if n := len(s.committed) - len(committed); n > 0 {
			d = append(d, fmt.Sprintf("%d transfer ids reported committed twice", n))
		}
		c.Detail = strings.Join(d, "; ")
	}
	return c, nil
}

// sample describes n problems by the first few of them.
func sample(items []string, n int, what string) string {
	const show = 3
	if len(items) > show {
		items = items[:show]
	}
	return fmt.Sprintf("%d %s: %s", n, what, strings.Join(items, "; "))
}

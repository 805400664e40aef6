package isolation_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// scenario shows one phenomenon with two transactions whose steps are
// interleaved in a fixed order on one goroutine, so the outcome depends on
// the isolation level and nothing else.
type scenario struct {
	// schema creates and fills the tables before either transaction begins.
	schema string
	// run plays the interleaving and reports whether the phenomenon's
	// visible effect occurred. db reads the outcome after both ended.
	run func(s *script, db querier, t1, t2 *tx) (occurred bool)
}

// querier is what a transaction and the pool have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tx names a transaction so an error says which side it came from.
type tx struct {
	name string
	pgx.Tx
}

// script runs steps and keeps the first error; every later step is skipped.
// A scenario then reads as its interleaving, one line a step, and a
// serialization failure anywhere ends it the way it would end a real
// transaction.
type script struct {
	ctx context.Context
	err error
}

func (s *script) exec(q querier, sql string, args ...any) {
	if s.err == nil {
		_, err := q.Exec(s.ctx, sql, args...)
		s.fail(q, sql, err)
	}
}

func (s *script) read(q querier, dest any, sql string, args ...any) {
	if s.err == nil {
		s.fail(q, sql, q.QueryRow(s.ctx, sql, args...).Scan(dest))
	}
}

func (s *script) commit(t *tx) {
	if s.err == nil {
		s.fail(t, "COMMIT", t.Commit(s.ctx))
	}
}

func (s *script) rollback(t *tx) {
	if s.err == nil {
		s.fail(t, "ROLLBACK", t.Rollback(s.ctx))
	}
}

// execBlocked starts a step that waits on a row lock the other transaction
// holds. It runs on its own goroutine because it cannot return until that
// transaction ends; the caller ends it, then calls wait for the result. The
// outcome is the same whether the statement reaches the server before or
// after the other transaction ends, so no timing is involved.
func (s *script) execBlocked(t *tx, sql string, args ...any) (wait func()) {
	if s.err != nil {
		return func() {}
	}
	done := make(chan error, 1)
	go func() {
		_, err := t.Exec(s.ctx, sql, args...)
		done <- err
	}()
	// wait must run even if a step in between failed: t is not free, and
	// the goroutine must not outlive the test, until the result is in.
	return func() {
		err := <-done
		if s.err == nil {
			s.fail(t, sql, err)
		}
	}
}

func (s *script) fail(q querier, step string, err error) {
	if err == nil {
		return
	}
	who := "pool"
	if t, ok := q.(*tx); ok {
		who = t.name
	}
	s.err = fmt.Errorf("%s: %s: %w", who, step, err)
}

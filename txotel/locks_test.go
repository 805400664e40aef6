package txotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

const lockSchema = `CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t VALUES (1, 0), (2, 0);`

// Each locking read in a transaction observed by txotel is a
// locks.row_lock span under the attempt (under the savepoint of a nested
// call), with its strength, wait policy and outcome, and is timed in
// txkit.locks.wait_time: a row had, a NOWAIT and a bounded wait on a row
// another transaction holds (55P03), and a SKIP LOCKED read past it.
func TestRowLockWaitSpansAndHistogram(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(lockSchema))
	tel := newTelemetry(t)
	holder, err := b.Pool.Begin(b.Ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = holder.Rollback(context.WithoutCancel(b.Ctx)) })
	_, err = holder.Exec(b.Ctx, "SELECT 1 FROM t WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)

	const q = "SELECT v FROM t WHERE id = $1"
	var v int
	err = txn.WithTx(b.Ctx, b.Pool, txn.Options{Observer: tel.obs}, func(ctx context.Context, tx pgx.Tx) error {
		if err := locks.QueryRow(ctx, tx, locks.Options{Strength: locks.ForNoKeyUpdate}, q, 2).Scan(&v); err != nil {
			return err
		}
		for _, o := range []locks.Options{{Wait: locks.NoWait}, {LockTimeout: 20 * time.Millisecond}} {
			err := txn.WithTx(ctx, b.Pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				return locks.QueryRow(ctx, tx, o, q, 1).Scan(&v)
			})
			require.ErrorIs(t, err, locks.ErrLockNotAvailable)
		}
		ids, err := locks.ByKey(ctx, tx, pgx.Identifier{"t"}, "id", []int{1}, locks.Options{Wait: locks.SkipLocked})
		require.Empty(t, ids)
		return err
	})
	require.NoError(t, err)

	require.Equal(t, `txn.WithTx
  txn.attempt
    locks.row_lock
    txn.savepoint
      locks.row_lock
    txn.savepoint
      locks.row_lock
    locks.row_lock
`, tree(tel.spans.Ended()))
	rl := named(tel.spans, txotel.SpanRowLock)
	type want struct{ strength, policy, outcome, rows, errType string }
	for i, w := range []want{
		{"FOR NO KEY UPDATE", "WAIT", "acquired", "1", ""},
		{"FOR UPDATE", "NOWAIT", "not_available", "0", "55P03"},
		{"FOR UPDATE", "WAIT", "not_available", "0", "55P03"},
		{"FOR UPDATE", "SKIP LOCKED", "skipped", "0", ""},
	} {
		s := rl[i]
		require.Equal(t, w.strength, spanAttr(s, txotel.KeyLockStrength), "span %d", i)
		require.Equal(t, w.policy, spanAttr(s, txotel.KeyLockWaitPolicy), "span %d", i)
		require.Equal(t, w.outcome, spanAttr(s, txotel.KeyLockOutcome), "span %d", i)
		require.Equal(t, w.rows, spanAttr(s, txotel.KeyLockRows), "span %d", i)
		require.Equal(t, w.errType, spanAttr(s, semconv.ErrorTypeKey), "span %d", i)
		require.Equal(t, codes.Unset, s.Status().Code, "a lock not had is an outcome, not a failed span (%d)", i)
	}
	require.Equal(t, "0.02", spanAttr(rl[2], txotel.KeyLockLockTimeout), "the bound the call set, in seconds")
	require.Empty(t, spanAttr(rl[1], txotel.KeyLockLockTimeout), "NOWAIT sets no bound")

	key := func(strength, policy, outcome string) string {
		return attrs(txotel.KeyLockStrength.String(strength), txotel.KeyLockWaitPolicy.String(policy),
			txotel.KeyLockOutcome.String(outcome)) + "#count"
	}
	require.Equal(t, map[string]float64{
		key("FOR NO KEY UPDATE", "WAIT", "acquired"): 1,
		key("FOR UPDATE", "NOWAIT", "not_available"): 1,
		key("FOR UPDATE", "WAIT", "not_available"):   1,
		key("FOR UPDATE", "SKIP LOCKED", "skipped"):  1,
	}, countsOnly(sums(tel.collect(t)["txkit.locks.wait_time"])))
}

// A locking read that fails for another reason is a failed span.
func TestRowLockFailureIsAnErrorSpan(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(lockSchema))
	tel := newTelemetry(t)
	err := txn.WithTx(b.Ctx, b.Pool, txn.Options{Retry: fastRetry(1), Observer: tel.obs}, func(ctx context.Context, tx pgx.Tx) error {
		var v int
		return locks.QueryRow(ctx, tx, locks.Options{}, "SELECT v / 0 FROM t WHERE id = $1", 1).Scan(&v)
	})
	require.Error(t, err)
	s := named(tel.spans, txotel.SpanRowLock)[0]
	require.Equal(t, "failed", spanAttr(s, txotel.KeyLockOutcome))
	require.Equal(t, "22012", spanAttr(s, semconv.ErrorTypeKey))
	require.Equal(t, codes.Error, s.Status().Code)
	require.Equal(t, "22012", s.Status().Description)
}

// With locks.Options.Observer, a locking read in a pgx.Tx of the
// caller's own is a span too.
func TestRowLockSpanWithOptionsObserver(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(lockSchema))
	tel := newTelemetry(t)
	tx, err := b.Pool.Begin(b.Ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(b.Ctx)) }()
	var v int
	require.NoError(t, locks.QueryRow(b.Ctx, tx, locks.Options{Strength: locks.ForShare, Wait: locks.NoWait, Observer: tel.obs},
		"SELECT v FROM t WHERE id = $1", 1).Scan(&v))
	require.Equal(t, "locks.row_lock\n", tree(tel.spans.Ended()))
	s := named(tel.spans, txotel.SpanRowLock)[0]
	require.Equal(t, "FOR SHARE", spanAttr(s, txotel.KeyLockStrength))
	require.Equal(t, "NOWAIT", spanAttr(s, txotel.KeyLockWaitPolicy))
	require.Equal(t, "acquired", spanAttr(s, txotel.KeyLockOutcome))
}

package txn_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/txn"
)

// eventLog records every event in order.
type eventLog struct {
	mu     sync.Mutex
	events []string
	retry  []txn.TxRetryData
	ends   []txn.TxEndData
	leaks  chan txn.TxLeakData
}

func (e *eventLog) add(s string) { e.mu.Lock(); e.events = append(e.events, s); e.mu.Unlock() }

func (e *eventLog) TxStart(ctx context.Context, d txn.TxStartData) context.Context {
	e.add("start " + d.Name + " " + d.Isolation.String())
	return ctx
}
func (e *eventLog) TxRetry(_ context.Context, d txn.TxRetryData) {
	e.add("retry " + d.SQLState)
	e.mu.Lock()
	e.retry = append(e.retry, d)
	e.mu.Unlock()
}
func (e *eventLog) TxAttemptEnd(_ context.Context, d txn.TxAttemptEndData) {
	e.add("attempt-end " + d.Outcome.String())
}
func (e *eventLog) TxEnd(_ context.Context, d txn.TxEndData) {
	e.add("end " + d.Outcome.String())
	e.mu.Lock()
	e.ends = append(e.ends, d)
	e.mu.Unlock()
}
func (e *eventLog) CommitResolved(context.Context, txn.CommitResolvedData) { e.add("resolved") }
func (e *eventLog) TxLeak(d txn.TxLeakData)                                { e.leaks <- d }
func (e *eventLog) CallbackPanic(context.Context, txn.CallbackPanicData)   { e.add("panic") }

func TestObserverSeesAttemptsRetriesAndEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := &eventLog{}
	attempts := 0
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Name: "transfer", Isolation: isolation.Serializable, Observer: obs, Retry: fastRetry(5)},
		func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			if attempts == 1 {
				_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
				return err
			}
			return insert(1)(ctx, tx)
		})
	require.NoError(t, err)
	require.Equal(t, []string{
		"start transfer SERIALIZABLE",
		"attempt-end rolled back",
		"retry 40001",
		"attempt-end committed",
		"end committed",
	}, obs.events)
	require.Equal(t, 1, obs.retry[0].Attempt)
	require.Positive(t, obs.retry[0].Wait)
	require.Equal(t, 2, obs.ends[0].Attempts)
	require.Equal(t, "transfer", obs.ends[0].Name)
}

func TestSlogObserverNeverLogsTheConnectionString(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw-do-not-log"
	b := setup(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.Password = password })
	var buf logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := txn.Options{Name: "audit", Observer: txn.NewSlogObserver(logger), Retry: fastRetry(2)}
	_ = txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
		return err
	})
	_ = txn.WithTx(b.ctx, b.pool, opts, func(context.Context, pgx.Tx) error { return errors.New("app error") })
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, insert(1)))
	out := buf.String()
	require.Contains(t, out, "retrying transaction")
	require.Contains(t, out, "name=audit")
	require.Contains(t, out, "sqlstate=40001")
	require.NotContains(t, out, password)
	require.NotContains(t, out, "postgres://")
	require.NotContains(t, out, b.pool.Config().ConnConfig.Database, "no database name in logs")
}

func TestLeakThresholdReportsWhereTheTransactionBegan(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := &eventLog{leaks: make(chan txn.TxLeakData, 1)}
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Name: "slow", Observer: obs, LeakThreshold: time.Millisecond},
		func(ctx context.Context, tx pgx.Tx) error {
			// Hold the transaction open until the leak report arrives.
			select {
			case d := <-obs.leaks:
				require.Equal(t, "slow", d.Name)
				require.GreaterOrEqual(t, d.Open, time.Millisecond)
				require.Contains(t, string(d.Stack), "TestLeakThresholdReportsWhereTheTransactionBegan")
			case <-time.After(time.Minute):
				t.Error("no leak report")
			}
			return nil
		})
	require.NoError(t, err)
}

func TestNoLeakReportForAQuickTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	obs := &eventLog{leaks: make(chan txn.TxLeakData, 1)}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs, LeakThreshold: time.Hour}, insert(1)))
	select {
	case <-obs.leaks:
		t.Fatal("unexpected leak report")
	default:
	}
}

// startEnd records TxStart and TxEnd, and marks the ctx TxStart returns.
type startEnd struct {
	txn.NopObserver
	mu     sync.Mutex
	starts []txn.TxStartData
	ends   []txn.TxEndData
}

type startMark struct{}

func (o *startEnd) TxStart(ctx context.Context, d txn.TxStartData) context.Context {
	o.mu.Lock()
	o.starts = append(o.starts, d)
	o.mu.Unlock()
	return context.WithValue(ctx, startMark{}, d.Name)
}

func (o *startEnd) TxEnd(_ context.Context, d txn.TxEndData) {
	o.mu.Lock()
	o.ends = append(o.ends, d)
	o.mu.Unlock()
}

// A nested WithTx reports TxStart (Nested true) and TxEnd to its own
// Observer, or to the outermost call's when it has none; its Name, or the
// outermost's. The ctx TxStart returns is the one fn gets.
func TestNestedCallsAreObserved(t *testing.T) {
	t.Parallel()
	b := setup(t)
	outer := &startEnd{}
	innerErr := errors.New("inner fails")
	err := txn.WithTx(b.ctx, b.pool, txn.Options{Name: "outer", Isolation: isolation.RepeatableRead, Observer: outer},
		func(ctx context.Context, tx pgx.Tx) error {
			require.NoError(t, txn.WithTx(ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
				require.Equal(t, "outer", ctx.Value(startMark{}))
				return insert(1)(ctx, tx)
			}))
			require.ErrorIs(t, txn.WithTx(ctx, b.pool, txn.Options{Name: "step"}, func(ctx context.Context, tx pgx.Tx) error {
				require.Equal(t, "step", ctx.Value(startMark{}))
				return innerErr
			}), innerErr)
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, []txn.TxStartData{
		{Name: "outer", Isolation: isolation.RepeatableRead},
		{Name: "outer", Isolation: isolation.RepeatableRead, Nested: true},
		{Name: "step", Isolation: isolation.RepeatableRead, Nested: true},
	}, outer.starts)
	require.Len(t, outer.ends, 3)
	require.Equal(t, txn.Committed, outer.ends[0].Outcome, "the released savepoint")
	require.NoError(t, outer.ends[0].Err)
	require.Equal(t, 1, outer.ends[0].Attempts)
	require.Equal(t, "step", outer.ends[1].Name)
	require.Equal(t, txn.RolledBack, outer.ends[1].Outcome)
	require.ErrorIs(t, outer.ends[1].Err, innerErr)
	require.Equal(t, "outer", outer.ends[2].Name)
	require.False(t, outer.starts[0].Nested)

	// A nested call's own Observer, with none on the outer call.
	inner := &startEnd{}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
		return txn.WithTx(ctx, b.pool, txn.Options{Name: "inner", Observer: inner}, insert(2))
	}))
	require.Equal(t, []txn.TxStartData{{Name: "inner", Nested: true}}, inner.starts)
	require.Len(t, inner.ends, 1)
	require.Equal(t, txn.Committed, inner.ends[0].Outcome)
}

// A pool that cannot connect: the error names what pgx's connect error
// names (host, port, user, database) but never the password or a
// connection string, in what WithTx returns and in what the slog observer
// logs.
func TestSlogObserverLogsNoPasswordWhenConnectingFails(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw-do-not-log"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close()) // nothing listens there now
	dsn := fmt.Sprintf("postgres://someone:%s@127.0.0.1:%d/somedb?sslmode=disable&connect_timeout=5", password, port)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()

	var buf logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := txn.Options{Name: "audit", Observer: txn.NewSlogObserver(logger), Retry: fastRetry(2)}
	err = txn.WithTx(context.Background(), pool, opts, insert(1))
	var connectErr *pgconn.ConnectError
	require.ErrorAs(t, err, &connectErr)
	out := buf.String()
	require.Contains(t, out, "failed to connect", "the connect error is logged")
	for _, text := range []string{err.Error(), out} {
		require.NotContains(t, text, password)
		require.NotContains(t, text, "postgres://")
		require.NotContains(t, text, "password")
	}
}

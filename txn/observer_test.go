package txn_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
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
	const password = "s3cret-pw-do-not-log"
	b := setup(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.Password = password })
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := txn.Options{Name: "audit", Observer: txn.NewSlogObserver(logger), Retry: fastRetry(2)}
	_ = txn.WithTx(b.ctx, b.pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
		return err
	})
	_ = txn.WithTx(b.ctx, b.pool, opts, func(context.Context, pgx.Tx) error { return errors.New("app error") })
	require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, insert(1)))
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	require.Contains(t, out, "retrying transaction")
	require.Contains(t, out, "name=audit")
	require.Contains(t, out, "sqlstate=40001")
	require.NotContains(t, out, password)
	require.NotContains(t, out, "postgres://")
	require.NotContains(t, out, b.pool.Config().ConnConfig.Database, "no database name in logs")
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestLeakThresholdReportsWhereTheTransactionBegan(t *testing.T) {
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
	b := setup(t)
	obs := &eventLog{leaks: make(chan txn.TxLeakData, 1)}
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{Observer: obs, LeakThreshold: time.Hour}, insert(1)))
	select {
	case <-obs.leaks:
		t.Fatal("unexpected leak report")
	default:
	}
}

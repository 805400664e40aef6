package txotel_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

const schema = `CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t VALUES (1, 0);`

func fastRetry(attempts int) *retry.Policy {
	return &retry.Policy{MaxAttempts: attempts, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond}
}

// failFirst makes the server raise sqlstate on the first n attempts.
func failFirst(n int, sqlstate string) func(ctx context.Context, tx pgx.Tx) error {
	calls := 0
	return func(ctx context.Context, tx pgx.Tx) error {
		calls++
		if calls <= n {
			_, err := tx.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '"+sqlstate+"'; END $$")
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
		return err
	}
}

func TestRetriedTransactionSpanAndMetrics(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t)

	opts := txn.Options{Name: "transfer", Isolation: isolation.Serializable, Retry: fastRetry(5), Observer: tel.obs}
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, failFirst(3, "40001")))

	require.Equal(t, "txn.WithTx\n  txn.attempt\n  txn.attempt\n  txn.attempt\n  txn.attempt\n", tree(tel.spans.Ended()),
		"one span for the call, one child per attempt")
	s := named(tel.spans, txotel.SpanTx)[0]
	require.False(t, s.Parent().IsValid(), "the call's span is a root here")
	for i, a := range named(tel.spans, txotel.SpanAttempt) {
		require.Equal(t, s.SpanContext().SpanID(), a.Parent().SpanID())
		require.Equal(t, strconv.Itoa(i+1), spanAttr(a, txotel.KeyTxAttempt))
		if i < 3 {
			require.Equal(t, "rolled back", spanAttr(a, txotel.KeyTxOutcome))
			require.Equal(t, "40001", spanAttr(a, semconv.DBResponseStatusCodeKey))
			require.Equal(t, "40001", spanAttr(a, semconv.ErrorTypeKey))
			require.Equal(t, codes.Error, a.Status().Code)
		} else {
			require.Equal(t, "committed", spanAttr(a, txotel.KeyTxOutcome))
			require.Empty(t, spanAttr(a, semconv.DBResponseStatusCodeKey))
			require.Equal(t, codes.Unset, a.Status().Code)
		}
		require.Empty(t, a.Events(), "retry events stay on the call's span")
	}
	require.Equal(t, "transfer", spanAttr(s, txotel.KeyTxName))
	require.Equal(t, isolation.Serializable.String(), spanAttr(s, txotel.KeyTxIsolation))
	require.Equal(t, "false", spanAttr(s, txotel.KeyTxReadOnly))
	require.Equal(t, "4", spanAttr(s, txotel.KeyTxAttempts))
	require.Equal(t, "committed", spanAttr(s, txotel.KeyTxOutcome))
	require.Empty(t, spanAttr(s, txotel.KeyTxResolution), "no COMMIT was lost")
	require.Len(t, s.Events(), 3)
	for i, e := range s.Events() {
		require.Equal(t, txotel.EventRetry, e.Name)
		got := map[string]string{}
		for _, kv := range e.Attributes {
			got[string(kv.Key)] = kv.Value.String()
		}
		require.Equal(t, "40001", got[string(semconv.DBResponseStatusCodeKey)])
		require.Equal(t, string(rune('1'+i)), got[string(txotel.KeyTxAttempt)])
		require.Contains(t, got, string(txotel.KeyTxBackoff))
	}

	m := tel.collect(t)
	name := txotel.KeyTxName.String("transfer")
	require.Equal(t, 3, int(sums(m["txkit.tx.retries"])[attrs(semconv.DBResponseStatusCode("40001"), name)]))
	committed := attrs(txotel.KeyTxOutcome.String("committed"), name)
	require.Equal(t, 1, int(sums(m["txkit.tx.attempts"])[committed+"#count"]))
	require.Equal(t, 4, int(sums(m["txkit.tx.attempts"])[committed+"#sum"]))
	require.Equal(t, 1, int(sums(m["txkit.tx.duration"])[committed+"#count"]))
	require.NotContains(t, m, "txkit.tx.commit_resolutions", "no COMMIT was lost")
}

// A deadlock and a serialization failure are counted apart, and an
// unnamed transaction has no txn.name attribute.
func TestRetriesAreCountedBySQLState(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t)
	opts := txn.Options{Retry: fastRetry(5), Observer: tel.obs}
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, failFirst(2, "40P01")))
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, failFirst(1, "40001")))
	got := sums(tel.collect(t)["txkit.tx.retries"])
	require.Equal(t, map[string]float64{
		attrs(semconv.DBResponseStatusCode("40P01")): 2,
		attrs(semconv.DBResponseStatusCode("40001")): 1,
	}, got)
}

func TestNestedTransactionIsAChildSpan(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t)
	opts := txn.Options{Name: "outer", Observer: tel.obs}
	err := txn.WithTx(b.Ctx, b.Pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		return txn.WithTx(ctx, b.Pool, txn.Options{Name: "inner"}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
			return err
		})
	})
	require.NoError(t, err)

	require.Equal(t, "txn.WithTx\n  txn.attempt\n    txn.savepoint\n", tree(tel.spans.Ended()))
	inner, outer := named(tel.spans, txotel.SpanSavepoint)[0], named(tel.spans, txotel.SpanTx)[0]
	attempt := named(tel.spans, txotel.SpanAttempt)[0]
	require.False(t, outer.Parent().IsValid())
	require.Equal(t, attempt.SpanContext().SpanID(), inner.Parent().SpanID(), "the savepoint is part of the attempt")
	require.Equal(t, outer.SpanContext().TraceID(), inner.SpanContext().TraceID())
	require.Equal(t, "inner", spanAttr(inner, txotel.KeyTxName))
	require.Equal(t, "committed", spanAttr(inner, txotel.KeyTxOutcome))
	require.Equal(t, "outer", spanAttr(outer, txotel.KeyTxName))

	// Only the outermost call is a transaction in the metrics.
	m := tel.collect(t)
	require.Equal(t, map[string]float64{
		attrs(txotel.KeyTxOutcome.String("committed"), txotel.KeyTxName.String("outer")) + "#count": 1,
		attrs(txotel.KeyTxOutcome.String("committed"), txotel.KeyTxName.String("outer")) + "#sum":   1,
	}, sums(m["txkit.tx.attempts"]))
}

// A COMMIT whose answer is cut after the transaction id came back is
// resolved as committed: the span says how, and the resolution is counted.
func TestLostCommitResolutionIsRecorded(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	proxy, err := faultproxy.Interpose(&cfg.ConnConfig.Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.MaxConns = 2
	db, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	ctx := t.Context()
	_, err = db.Exec(ctx, schema)
	require.NoError(t, err)

	tel := newTelemetry(t)
	proxy.ArmCommitFault(faultproxy.CutAfterXID)
	opts := txn.Options{Name: "lost", Retry: fastRetry(3), Observer: tel.obs}
	require.NoError(t, txn.WithTx(ctx, db, opts, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
		return err
	}))
	var v int
	require.NoError(t, db.QueryRow(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v))
	require.Equal(t, 1, v, "committed once")

	require.Equal(t, "txn.WithTx\n  txn.attempt\n", tree(tel.spans.Ended()))
	s := named(tel.spans, txotel.SpanTx)[0]
	a := named(tel.spans, txotel.SpanAttempt)[0]
	require.Equal(t, "committed", spanAttr(a, txotel.KeyTxOutcome))
	require.Equal(t, "committed", spanAttr(a, txotel.KeyTxResolution), "the attempt whose COMMIT was lost says how it was settled")
	require.Equal(t, "1", spanAttr(s, txotel.KeyTxAttempts))
	require.Equal(t, "committed", spanAttr(s, txotel.KeyTxOutcome))
	require.Equal(t, "committed", spanAttr(s, txotel.KeyTxResolution))
	require.Len(t, s.Events(), 1)
	require.Equal(t, txotel.EventResolved, s.Events()[0].Name)

	got := sums(tel.collect(t)["txkit.tx.commit_resolutions"])
	require.Equal(t, map[string]float64{
		attrs(txotel.KeyTxResolution.String("committed"), txotel.KeyTxOutcome.String("committed"), txotel.KeyTxName.String("lost")): 1,
	}, got)
}

// Installing txotel does not change what a panicking AfterCommit callback
// does: an observer of CallbackPanic would swallow the panic.
func TestObserverLeavesCallbackPanicsAlone(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	_, ok := any(tel.obs).(txn.CallbackPanicObserver)
	require.False(t, ok)
	_, ok = any(tel.obs).(txn.TxEndObserver)
	require.True(t, ok)
}

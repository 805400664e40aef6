package txotel_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

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

// everyAttempt sets Options.SpanEveryAttempt.
func everyAttempt(on bool) func(*txotel.Options) {
	return func(o *txotel.Options) { o.SpanEveryAttempt = on }
}

// spanModes runs f by default and with Options.SpanEveryAttempt.
func spanModes(t *testing.T, f func(t *testing.T, every bool)) {
	for _, every := range []bool{false, true} {
		t.Run("SpanEveryAttempt="+strconv.FormatBool(every), func(t *testing.T) {
			t.Parallel()
			f(t, every)
		})
	}
}

func TestRetriedTransactionSpanAndMetrics(t *testing.T) {
	t.Parallel()
	spanModes(t, testRetriedTransactionSpanAndMetrics)
}

func testRetriedTransactionSpanAndMetrics(t *testing.T, every bool) {
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t, everyAttempt(every))

	opts := txn.Options{Name: "transfer", Isolation: isolation.Serializable, Retry: fastRetry(5), Observer: tel.obs}
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, failFirst(3, "40001")))

	first := 2 // by default the first attempt runs in the call's span
	want := "txn.WithTx\n  txn.attempt\n  txn.attempt\n  txn.attempt\n"
	if every {
		first = 1
		want = "txn.WithTx\n  txn.attempt\n  txn.attempt\n  txn.attempt\n  txn.attempt\n"
	}
	require.Equal(t, want, tree(tel.spans.Ended()), "one span for the call, one child per attempt after the first (every attempt with SpanEveryAttempt)")
	s := named(tel.spans, txotel.SpanTx)[0]
	require.False(t, s.Parent().IsValid(), "the call's span is a root here")
	for i, a := range named(tel.spans, txotel.SpanAttempt) {
		attempt := first + i
		require.Equal(t, s.SpanContext().SpanID(), a.Parent().SpanID())
		require.Equal(t, strconv.Itoa(attempt), spanAttr(a, txotel.KeyTxAttempt))
		if attempt <= 3 {
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
	spanModes(t, testNestedTransactionIsAChildSpan)
}

func testNestedTransactionIsAChildSpan(t *testing.T, every bool) {
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t, everyAttempt(every))
	opts := txn.Options{Name: "outer", Observer: tel.obs}
	err := txn.WithTx(b.Ctx, b.Pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		return txn.WithTx(ctx, b.Pool, txn.Options{Name: "inner"}, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
			return err
		})
	})
	require.NoError(t, err)

	inner, outer := named(tel.spans, txotel.SpanSavepoint)[0], named(tel.spans, txotel.SpanTx)[0]
	require.False(t, outer.Parent().IsValid())
	if every {
		require.Equal(t, "txn.WithTx\n  txn.attempt\n    txn.savepoint\n", tree(tel.spans.Ended()))
		attempt := named(tel.spans, txotel.SpanAttempt)[0]
		require.Equal(t, attempt.SpanContext().SpanID(), inner.Parent().SpanID(), "the savepoint is part of the attempt")
	} else {
		require.Equal(t, "txn.WithTx\n  txn.savepoint\n", tree(tel.spans.Ended()))
		require.Equal(t, outer.SpanContext().SpanID(), inner.Parent().SpanID(), "the first attempt runs in the call's span")
	}
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
	spanModes(t, testLostCommitResolutionIsRecorded)
}

func testLostCommitResolutionIsRecorded(t *testing.T, every bool) {
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

	tel := newTelemetry(t, everyAttempt(every))
	proxy.ArmCommitFault(faultproxy.CutAfterXID)
	opts := txn.Options{Name: "lost", Retry: fastRetry(3), Observer: tel.obs}
	require.NoError(t, txn.WithTx(ctx, db, opts, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
		return err
	}))
	var v int
	require.NoError(t, db.QueryRow(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v))
	require.Equal(t, 1, v, "committed once")

	s := named(tel.spans, txotel.SpanTx)[0]
	if every {
		require.Equal(t, "txn.WithTx\n  txn.attempt\n", tree(tel.spans.Ended()))
		a := named(tel.spans, txotel.SpanAttempt)[0]
		require.Equal(t, "committed", spanAttr(a, txotel.KeyTxOutcome))
		require.Equal(t, "committed", spanAttr(a, txotel.KeyTxResolution), "the attempt whose COMMIT was lost says how it was settled")
	} else {
		require.Equal(t, "txn.WithTx\n", tree(tel.spans.Ended()), "the only attempt ran in the call's span")
	}
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

// startAttrs is a sampler that samples every span and keeps the
// attributes each span named name started with.
type startAttrs struct {
	mu    sync.Mutex
	name  string
	attrs [][]attribute.KeyValue
}

func (s *startAttrs) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Name == s.name {
		s.mu.Lock()
		s.attrs = append(s.attrs, slices.Clone(p.Attributes))
		s.mu.Unlock()
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (*startAttrs) Description() string { return "startAttrs" }

// The call's span is given its attributes when it ends: a sampler sees
// none, and the ended span has them all, once each.
func TestCallSpanAttributesAreSetAtItsEnd(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(schema))
	sampler := &startAttrs{name: txotel.SpanTx}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	obs, err := txotel.New(txotel.Options{TracerProvider: tp})
	require.NoError(t, err)
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, txn.Options{Name: "n", ReadOnly: true, Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT 1")
		return err
	}))
	require.Equal(t, [][]attribute.KeyValue{nil}, sampler.attrs)
	spans := rec.Ended()
	require.Len(t, spans, 1)
	got := map[attribute.Key]string{}
	for _, kv := range spans[0].Attributes() {
		require.NotContains(t, got, kv.Key)
		got[kv.Key] = kv.Value.String()
	}
	require.Equal(t, map[attribute.Key]string{
		semconv.DBSystemNameKey: "postgresql", txotel.KeyTxIsolation: isolation.Default.String(),
		txotel.KeyTxReadOnly: "true", txotel.KeyTxName: "n", txotel.KeyTxAttempts: "1", txotel.KeyTxOutcome: "committed",
	}, got)
}

// Both histograms count every outermost call, one-attempt calls in
// txkit.tx.attempts' value 1 included; txkit.tx.duration takes its
// exemplars from any call's span, txkit.tx.attempts only from retried
// calls' (a one-attempt call's would point at the same trace as its
// duration's and say nothing of retries).
func TestAttemptsExemplarsComeFromRetriedCalls(t *testing.T) {
	t.Parallel()
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t)
	opts := txn.Options{Name: "ex", Retry: fastRetry(3), Observer: tel.obs}
	for range 3 {
		require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, updateOne))
	}
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, failFirst(1, "40001")))

	calls := named(tel.spans, txotel.SpanTx)
	require.Len(t, calls, 4)
	traces := map[trace.TraceID]string{}
	for _, s := range calls {
		traces[s.SpanContext().TraceID()] = spanAttr(s, txotel.KeyTxAttempts)
	}
	committed := attribute.NewSet(txotel.KeyTxOutcome.String("committed"), txotel.KeyTxName.String("ex"))
	m := tel.collect(t)

	durations := m["txkit.tx.duration"].Data.(metricdata.Histogram[float64]).DataPoints
	require.Len(t, durations, 1)
	require.True(t, durations[0].Attributes.Equals(&committed))
	require.Equal(t, uint64(4), durations[0].Count)
	require.NotEmpty(t, durations[0].Exemplars)
	for _, e := range durations[0].Exemplars {
		require.Contains(t, traces, trace.TraceID(e.TraceID))
	}

	attempts := m["txkit.tx.attempts"].Data.(metricdata.Histogram[int64]).DataPoints
	require.Len(t, attempts, 1)
	p := attempts[0]
	require.True(t, p.Attributes.Equals(&committed))
	require.Equal(t, uint64(4), p.Count)
	require.Equal(t, int64(5), p.Sum)
	require.Equal(t, uint64(3), p.BucketCounts[0], "three calls of one attempt, in the bucket (-∞, 1]")
	require.Len(t, p.Exemplars, 1)
	require.Equal(t, int64(2), p.Exemplars[0].Value)
	require.Equal(t, "2", traces[trace.TraceID(p.Exemplars[0].TraceID)], "the retried call's trace")
}

// Calls past the cache of per-kind attributes (more than 1,024 names,
// an isolation level the isolation package does not define) are
// recorded as the cached ones are.
func TestUncachedKindsRecordTheSame(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	const names = 1100
	call := func(name string, level isolation.Level) {
		ctx := tel.obs.TxStart(t.Context(), txn.TxStartData{Name: name, Isolation: level})
		tel.obs.TxEnd(ctx, txn.TxEndData{Name: name, Attempts: 1, Outcome: txn.Committed, Duration: time.Millisecond})
	}
	for i := range names {
		call("n"+strconv.Itoa(i), isolation.Serializable)
	}
	call("odd", isolation.Level(9))

	spans := named(tel.spans, txotel.SpanTx)
	require.Len(t, spans, names+1)
	for i, s := range spans {
		name, level := "n"+strconv.Itoa(i), isolation.Serializable.String()
		if i == names {
			name, level = "odd", isolation.Level(9).String()
		}
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			require.NotContains(t, got, kv.Key)
			got[kv.Key] = kv.Value.String()
		}
		require.Equal(t, map[attribute.Key]string{
			semconv.DBSystemNameKey: "postgresql", txotel.KeyTxIsolation: level, txotel.KeyTxReadOnly: "false",
			txotel.KeyTxName: name, txotel.KeyTxAttempts: "1", txotel.KeyTxOutcome: "committed",
		}, got)
	}
	m := tel.collect(t)
	for _, name := range []string{"n0", "n1099", "odd"} {
		key := attrs(txotel.KeyTxOutcome.String("committed"), txotel.KeyTxName.String(name))
		require.Equal(t, 1, int(sums(m["txkit.tx.attempts"])[key+"#count"]), name)
		require.Equal(t, 1, int(sums(m["txkit.tx.duration"])[key+"#count"]), name)
	}
}

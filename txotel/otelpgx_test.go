package txotel_test

import (
	"context"
	"testing"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// With otelpgx and txotel's pool tracer installed together through pgx's
// multitracer, otelpgx's spans for BEGIN, fn's statement (in one batch
// span when the statement carries BEGIN) and COMMIT are
// children of the attempt's span under txn.WithTx (of txn.WithTx itself
// for the first attempt, unless Options.SpanEveryAttempt), in the same
// trace, and the pool metrics still count the acquire.
func TestNestsWithOtelpgx(t *testing.T) {
	t.Parallel()
	spanModes(t, testNestsWithOtelpgx)
}

func testNestsWithOtelpgx(t *testing.T, every bool) {
	tel := newTelemetry(t, everyAttempt(every))
	pm, err := tel.obs.Pool(txotel.PoolOptions{Name: "both"})
	require.NoError(t, err)
	qt := otelpgx.NewTracer(otelpgx.WithTracerProvider(tel.tp), otelpgx.WithDisableAcquireTracer())
	b := pgtest.Setup(t, pgtest.Schema(schema), pgtest.Configure(func(c *pgxpool.Config) {
		c.ConnConfig.Tracer = multitracer.New(qt, pm)
	}))
	tel.spans.Reset()
	key := attrs(semconvPool("both")...)
	waits := func() int { return int(sums(tel.collect(t)["db.client.connection.wait_time"])[key+"#count"]) }
	before := waits()

	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, txn.Options{Name: "both", Observer: tel.obs}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = $1", 1)
		return err
	}))

	// The tree: txn.WithTx → txn.attempt → otelpgx's batch of BEGIN and
	// the UPDATE (BEGIN rides with fn's first statement), COMMIT, all in
	// one trace; without the attempt's span by default.
	spans := tel.spans.Ended()
	want := "txn.WithTx\n  batch start\n    BEGIN\n    UPDATE\n  COMMIT\n"
	if every {
		want = "txn.WithTx\n  txn.attempt\n    batch start\n      BEGIN\n      UPDATE\n    COMMIT\n"
	}
	require.Equal(t, want, tree(spans))
	for _, s := range spans {
		require.Equal(t, spans[0].SpanContext().TraceID(), s.SpanContext().TraceID(), s.Name())
	}

	require.Equal(t, 1, waits()-before, "one acquire, counted once")
}

// A retried transaction under otelpgx, by default: the first attempt's
// statements are children of txn.WithTx, beside the retry's txn.attempt
// that holds its own; the txn.retry event says how the first one ended.
func TestRetryNestsWithOtelpgx(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	qt := otelpgx.NewTracer(otelpgx.WithTracerProvider(tel.tp), otelpgx.WithDisableAcquireTracer())
	b := pgtest.Setup(t, pgtest.Schema(schema), pgtest.Configure(func(c *pgxpool.Config) { c.ConnConfig.Tracer = qt }))
	tel.spans.Reset()

	opts := txn.Options{Retry: fastRetry(3), NoRetryLockTimeout: true, Observer: tel.obs}
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, opts, failFirst(1, "40001")))
	// Both attempts' first statements are Execs without arguments, which
	// BEGIN goes alone ahead of (see TestNestsWithOtelpgx for one that
	// carries it).
	require.Equal(t, "txn.WithTx\n  BEGIN\n  DO\n  ROLLBACK\n  txn.attempt\n    BEGIN\n    UPDATE\n    COMMIT\n", tree(tel.spans.Ended()))
	s := named(tel.spans, txotel.SpanTx)[0]
	require.Len(t, s.Events(), 1)
	require.Equal(t, txotel.EventRetry, s.Events()[0].Name)
	require.Contains(t, s.Events()[0].Attributes, txotel.KeyTxAttempt.Int(1))
	require.Contains(t, s.Events()[0].Attributes, semconv.DBResponseStatusCode("40001"))
	require.Equal(t, "2", spanAttr(named(tel.spans, txotel.SpanAttempt)[0], txotel.KeyTxAttempt))
}

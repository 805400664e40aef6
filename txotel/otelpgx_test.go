package txotel_test

import (
	"context"
	"testing"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// With otelpgx and txotel's pool tracer installed together through pgx's
// multitracer, otelpgx's spans for BEGIN, fn's statement and COMMIT are
// children of the attempt's span under txn.WithTx, in the same trace, and the pool
// metrics still count the acquire.
func TestNestsWithOtelpgx(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
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

	// The tree: txn.WithTx → txn.attempt → BEGIN, UPDATE (→ its prepare,
	// named alike), COMMIT, all in one trace.
	spans := tel.spans.Ended()
	require.Equal(t, "txn.WithTx\n  txn.attempt\n    BEGIN\n    UPDATE\n      UPDATE\n    COMMIT\n", tree(spans))
	for _, s := range spans {
		require.Equal(t, spans[0].SpanContext().TraceID(), s.SpanContext().TraceID(), s.Name())
	}

	require.Equal(t, 1, waits()-before, "one acquire, counted once")
}

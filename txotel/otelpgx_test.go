package txotel_test

import (
	"context"
	"testing"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// With otelpgx and txotel's pool tracer installed together through pgx's
// multitracer, otelpgx's spans for BEGIN, fn's statement and COMMIT are
// children of the txn.WithTx span, in the same trace, and the pool
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

	spans := tel.spans.Ended()
	var txSpan = -1
	for i, s := range spans {
		if s.Name() == txotel.SpanTx {
			txSpan = i
		}
	}
	require.NotEqual(t, -1, txSpan, "spans: %v", ended(tel.spans))
	tx := spans[txSpan]
	// The tree: txn.WithTx → BEGIN, UPDATE (→ its prepare, named alike), COMMIT.
	byID := map[trace.SpanID]string{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s.Name()
	}
	var children []string
	for _, s := range spans {
		if s.Name() == txotel.SpanTx {
			continue
		}
		require.Equal(t, tx.SpanContext().TraceID(), s.SpanContext().TraceID(), s.Name())
		parent := byID[s.Parent().SpanID()]
		if parent == txotel.SpanTx {
			children = append(children, s.Name())
			continue
		}
		require.Equal(t, "UPDATE", parent, "%s is under the UPDATE (its prepare)", s.Name())
	}
	require.Equal(t, []string{"BEGIN", "UPDATE", "COMMIT"}, children)

	require.Equal(t, 1, waits()-before, "one acquire, counted once")
}

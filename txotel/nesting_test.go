package txotel_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// queryParents is a pgx query tracer that notes the span current for each
// statement, as otelpgx uses it for the parent of its query span.
type queryParents struct {
	mu      sync.Mutex
	parents map[string]trace.SpanID
}

func (q *queryParents) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.parents[d.SQL] = trace.SpanContextFromContext(ctx).SpanID()
	return ctx
}

func (q *queryParents) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A query tracer sees BEGIN, fn's statements and COMMIT under the
// attempt's span, so otelpgx's query spans nest under txn.WithTx, in the
// txn.attempt they ran in.
func TestQueriesNestUnderTheTransactionSpan(t *testing.T) {
	t.Parallel()
	qp := &queryParents{parents: map[string]trace.SpanID{}}
	b := pgtest.Setup(t, pgtest.Schema(schema), pgtest.Configure(func(c *pgxpool.Config) { c.ConnConfig.Tracer = qp }))
	tel := newTelemetry(t)
	const update = "UPDATE t SET v = v + 1 WHERE id = 1"
	require.NoError(t, txn.WithTx(b.Ctx, b.Pool, txn.Options{Observer: tel.obs}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, update)
		return err
	}))
	require.Equal(t, "txn.WithTx\n  txn.attempt\n", tree(tel.spans.Ended()))
	id := named(tel.spans, txotel.SpanAttempt)[0].SpanContext().SpanID()
	qp.mu.Lock()
	defer qp.mu.Unlock()
	require.Equal(t, id, qp.parents[update])
	n := 0
	for sql, parent := range qp.parents {
		if sql == "begin" || sql == "commit" || sql == update {
			require.Equal(t, id, parent, sql)
			n++
		}
	}
	require.GreaterOrEqual(t, n, 2, "BEGIN or COMMIT seen: %v", qp.parents)
}

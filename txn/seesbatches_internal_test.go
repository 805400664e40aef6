package txn

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
)

type ptrTracer struct{}

func (*ptrTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (*ptrTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (*ptrTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (*ptrTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (*ptrTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// sliceTracer sees batches; the test wraps it in a struct that holds a
// slice, which cannot be compared.
type sliceTracer struct{}

func (sliceTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (sliceTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (sliceTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (sliceTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (sliceTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

type queryOnly struct{}

func (*queryOnly) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (*queryOnly) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A multitracer sees batches only when each of its query tracers is
// among its batch tracers; a tracer that cannot be compared counts as
// not seeing them, without a panic.
func TestSeesBatches(t *testing.T) {
	p := &ptrTracer{}
	handBuilt := &multitracer.Tracer{QueryTracers: []pgx.QueryTracer{p}} // not in BatchTracers
	nonComparable := multitracer.New(struct {
		sliceTracer
		s []int
	}{})
	for _, c := range []struct {
		name string
		qt   pgx.QueryTracer
		want bool
	}{
		{"none", nil, true},
		{"batch tracer", p, true},
		{"query tracer only", &queryOnly{}, false},
		{"multitracer of batch tracers", multitracer.New(p, &ptrTracer{}), true},
		{"multitracer with a query tracer only", multitracer.New(p, &queryOnly{}), false},
		{"multitracer missing a batch tracer", handBuilt, false},
		{"multitracer of a tracer that cannot be compared", nonComparable, false},
	} {
		if got := seesBatches(c.qt); got != c.want {
			t.Errorf("%s: seesBatches = %v, want %v", c.name, got, c.want)
		}
	}
}

package txotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/locks"
)

// Attribute keys and span name of row locks.
const (
	KeyLockStrength    = attribute.Key("locks.strength")
	KeyLockWaitPolicy  = attribute.Key("locks.wait_policy")
	KeyLockOutcome     = attribute.Key("locks.outcome")
	KeyLockRows        = attribute.Key("locks.rows")
	KeyLockLockTimeout = attribute.Key("locks.lock_timeout")
	SpanRowLock        = "locks.row_lock"
)

var (
	_ locks.RowLockStartObserver = (*Observer)(nil)
	_ locks.RowLockEndObserver   = (*Observer)(nil)
)

// RowLockStart starts a SpanRowLock span around a locking read; the
// statement is sent with its ctx, so a query tracer's span nests under it.
func (o *Observer) RowLockStart(ctx context.Context, d locks.RowLockStartData) context.Context {
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, semconv.DBSystemNamePostgreSQL,
		KeyLockStrength.String(d.Strength.String()), KeyLockWaitPolicy.String(d.Wait.String()))
	if d.LockTimeout > 0 {
		attrs = append(attrs, KeyLockLockTimeout.Float64(d.LockTimeout.Seconds()))
	}
	ctx, _ = o.tracer.Start(ctx, SpanRowLock, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// RowLockEnd ends the read's span with its outcome and records its time
// in txkit.locks.wait_time. A lock not available (55P03) or skipped is an
// outcome, not a failure of the span; any other error is.
func (o *Observer) RowLockEnd(ctx context.Context, d locks.RowLockEndData) {
	span := trace.SpanFromContext(ctx)
	outcome := KeyLockOutcome.String(d.Outcome.String())
	span.SetAttributes(outcome, KeyLockRows.Int(d.Rows))
	if d.Err != nil {
		et := errorType(d.Err)
		span.SetAttributes(semconv.ErrorTypeKey.String(et))
		if d.Outcome == locks.RowLockFailed {
			span.SetStatus(codes.Error, et)
		}
	}
	span.End()
	o.m.rowLockWait.Record(ctx, d.Duration.Seconds(), metric.WithAttributes(
		KeyLockStrength.String(d.Strength.String()), KeyLockWaitPolicy.String(d.Wait.String()), outcome))
}

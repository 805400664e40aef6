package txotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/advisory"
)

var (
	_ advisory.AcquireStartObserver = (*Observer)(nil)
	_ advisory.AcquireEndObserver   = (*Observer)(nil)
	_ advisory.LockReleasedObserver = (*Observer)(nil)
	_ advisory.LockLostObserver     = (*Observer)(nil)
	_ advisory.LockLeakObserver     = (*Observer)(nil)
)

type lockKey struct{}

// AcquireStart starts a SpanAcquire span covering the lock call's wait.
func (o *Observer) AcquireStart(ctx context.Context, d advisory.AcquireStartData) context.Context {
	ctx, span := o.tracer.Start(ctx, SpanAcquire, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL,
		KeyAdvisoryName.String(d.Name),
		KeyAdvisoryKind.String(d.Kind.String()),
		KeyAdvisoryShared.Bool(d.Shared),
		KeyAdvisoryTry.Bool(d.Try),
	))
	return context.WithValue(ctx, lockKey{}, span)
}

// AcquireEnd ends the call's span and records its wait; a call that found
// the lock held by another is counted in txkit.advisory.not_acquired.
func (o *Observer) AcquireEnd(ctx context.Context, d advisory.AcquireEndData) {
	if span, ok := ctx.Value(lockKey{}).(trace.Span); ok {
		span.SetAttributes(KeyAdvisoryAcquired.Bool(d.Acquired))
		if d.Err != nil {
			et := errorType(d.Err)
			span.SetAttributes(semconv.ErrorTypeKey.String(et))
			if !errors.Is(d.Err, advisory.ErrNotAcquired) {
				span.SetStatus(codes.Error, et)
			}
		}
		span.End()
	}
	attrs := o.lockAttrs(d.Name, KeyAdvisoryKind.String(d.Kind.String()), KeyAdvisoryShared.Bool(d.Shared), KeyAdvisoryAcquired.Bool(d.Acquired))
	o.m.lockWait.Record(ctx, d.Wait.Seconds(), metric.WithAttributes(attrs...))
	if errors.Is(d.Err, advisory.ErrNotAcquired) {
		o.m.lockNotAcq.Add(ctx, 1, metric.WithAttributes(o.lockAttrs(d.Name, KeyAdvisoryKind.String(d.Kind.String()))...))
	}
}

// LockReleased records a SpanHold span ending now and lasting as long as
// the lock was held (advisory measures that up to the unlock, so the span
// starts later than the acquisition by the unlock's round trip), and the
// hold time.
func (o *Observer) LockReleased(ctx context.Context, d advisory.LockReleasedData) {
	_, span := o.tracer.Start(ctx, SpanHold, trace.WithTimestamp(since(d.Held)), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL, KeyAdvisoryName.String(d.Name), KeyAdvisoryLost.Bool(false)))
	if d.Err != nil {
		span.SetStatus(codes.Error, errorType(d.Err))
	}
	span.End()
	o.m.lockHold.Record(ctx, d.Held.Seconds(), metric.WithAttributes(o.lockAttrs(d.Name, KeyAdvisoryLost.Bool(false))...))
}

// LockLost records a SpanHold span ended by the loss, the hold time and
// the loss.
func (o *Observer) LockLost(d advisory.LockLostData) {
	ctx := context.Background()
	_, span := o.tracer.Start(ctx, SpanHold, trace.WithTimestamp(since(d.Held)), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL, KeyAdvisoryName.String(d.Name), KeyAdvisoryLost.Bool(true)))
	span.SetStatus(codes.Error, "lock_lost")
	span.End()
	o.m.lockHold.Record(ctx, d.Held.Seconds(), metric.WithAttributes(o.lockAttrs(d.Name, KeyAdvisoryLost.Bool(true))...))
	o.m.lockLost.Add(ctx, 1, metric.WithAttributes(o.lockAttrs(d.Name)...))
}

// LockLeak counts session locks garbage collected without Release.
func (o *Observer) LockLeak(d advisory.LockLeakData) {
	o.m.lockLeaks.Add(context.Background(), 1, metric.WithAttributes(o.lockAttrs(d.Name)...))
}

// lockAttrs is attrs with advisory.name added when Options.LockNames is set.
func (o *Observer) lockAttrs(name string, attrs ...attribute.KeyValue) []attribute.KeyValue {
	if o.lockNames && name != "" {
		attrs = append(attrs, KeyAdvisoryName.String(name))
	}
	return attrs
}

package txotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/advisory"
)

// Attribute key and span name of leaderships (advisory.Lead).
const (
	KeyAdvisoryTerm = attribute.Key("advisory.term")
	SpanLeadership  = "advisory.leadership"
)

var (
	_ advisory.LeaderStartObserver = (*Observer)(nil)
	_ advisory.LeaderEndObserver   = (*Observer)(nil)
)

// LeaderStart counts a leadership won in txkit.advisory.leaderships and
// adds one to txkit.advisory.leader, the leaderships this process holds.
func (o *Observer) LeaderStart(ctx context.Context, d advisory.LeaderStartData) {
	opt := metric.WithAttributes(o.lockAttrs(d.Name)...)
	o.m.leaderships.Add(ctx, 1, opt)
	o.m.leader.Add(ctx, 1, opt)
}

// LeaderEnd records a SpanLeadership span as long as the leadership
// lasted, ending now, and takes it off txkit.advisory.leader.
func (o *Observer) LeaderEnd(ctx context.Context, d advisory.LeaderEndData) {
	_, span := o.tracer.Start(ctx, SpanLeadership, trace.WithTimestamp(since(d.Held)), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL, KeyAdvisoryName.String(d.Name), KeyAdvisoryTerm.Int64(d.Term), KeyAdvisoryLost.Bool(d.Lost)))
	switch {
	case d.Lost:
		span.SetAttributes(semconv.ErrorTypeKey.String("lock_lost"))
		span.SetStatus(codes.Error, "lock_lost")
	case d.Err != nil && ctx.Err() == nil:
		et := errorType(d.Err)
		span.SetAttributes(semconv.ErrorTypeKey.String(et))
		span.SetStatus(codes.Error, et)
	}
	span.End()
	o.m.leader.Add(ctx, -1, metric.WithAttributes(o.lockAttrs(d.Name)...))
}

package txotel

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// Attribute keys of txotel's own spans and metrics.
const (
	KeyTxName           = attribute.Key("txn.name")
	KeyTxIsolation      = attribute.Key("txn.isolation")
	KeyTxReadOnly       = attribute.Key("txn.read_only")
	KeyTxAttempts       = attribute.Key("txn.attempts")
	KeyTxAttempt        = attribute.Key("txn.attempt")
	KeyTxOutcome        = attribute.Key("txn.outcome")
	KeyTxBackoff        = attribute.Key("txn.backoff")
	KeyTxResolution     = attribute.Key("txn.commit.resolution")
	KeyTxXID            = attribute.Key("txn.xid")
	KeyAdvisoryName     = attribute.Key("advisory.name")
	KeyAdvisoryKind     = attribute.Key("advisory.kind")
	KeyAdvisoryShared   = attribute.Key("advisory.shared")
	KeyAdvisoryTry      = attribute.Key("advisory.try")
	KeyAdvisoryAcquired = attribute.Key("advisory.acquired")
	KeyAdvisoryLost     = attribute.Key("advisory.lost")
	KeyOptimisticTable  = attribute.Key("optimistic.table")
)

// Span names.
const (
	SpanTx        = "txn.WithTx"
	SpanSavepoint = "txn.savepoint"
	SpanAttempt   = "txn.attempt"
	SpanAcquire   = "advisory.acquire"
	SpanHold      = "advisory.hold"
	EventRetry    = "txn.retry"
	EventResolved = "txn.commit_resolved"
)

var (
	_ txn.TxStartObserver        = (*Observer)(nil)
	_ txn.TxRetryObserver        = (*Observer)(nil)
	_ txn.TxAttemptStartObserver = (*Observer)(nil)
	_ txn.TxAttemptEndObserver   = (*Observer)(nil)
	_ txn.TxEndObserver          = (*Observer)(nil)
	_ txn.CommitResolvedObserver = (*Observer)(nil)
	_ txn.TxLeakObserver         = (*Observer)(nil)
)

type txKey struct{}

// txState is what TxStart leaves in ctx for the later events of the call.
// It is the ctx itself, a context that answers txKey with itself: one
// allocation where context.WithValue and the state would make two.
type txState struct {
	context.Context
	span       trace.Span
	nested     bool
	resolution string
}

func (s *txState) Value(key any) any {
	if key == (txKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// TxStart starts the call's span: SpanTx for an outermost call,
// SpanSavepoint for a nested one.
func (o *Observer) TxStart(ctx context.Context, d txn.TxStartData) context.Context {
	name := SpanTx
	if d.Nested {
		name = SpanSavepoint
	}
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, semconv.DBSystemNamePostgreSQL,
		KeyTxIsolation.String(d.Isolation.String()), KeyTxReadOnly.Bool(d.ReadOnly))
	if d.Name != "" {
		attrs = append(attrs, KeyTxName.String(d.Name))
	}
	ctx, span := o.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return &txState{Context: ctx, span: span, nested: d.Nested}
}

// TxRetry adds a EventRetry span event and counts the retry by SQLSTATE.
func (o *Observer) TxRetry(ctx context.Context, d txn.TxRetryData) {
	code := d.SQLState
	if code == "" {
		code = errorType(d.Err)
	}
	if s, ok := ctx.Value(txKey{}).(*txState); ok {
		s.span.AddEvent(EventRetry, trace.WithAttributes(
			KeyTxAttempt.Int(d.Attempt),
			semconv.DBResponseStatusCode(code),
			KeyTxBackoff.Float64(d.Wait.Seconds()),
		))
	}
	o.m.txRetries.Add(ctx, 1, metric.WithAttributes(txNameAttrs(d.Name, semconv.DBResponseStatusCode(code))...))
}

// TxAttemptStart starts a SpanAttempt span, a child of the call's span;
// the attempt's statements nest under it. Its attributes are all set at
// its end, in one call: a span's attributes cost an allocation each time
// they are added to.
func (o *Observer) TxAttemptStart(ctx context.Context, _ txn.TxAttemptStartData) context.Context {
	ctx, _ = o.tracer.Start(ctx, SpanAttempt)
	return ctx
}

// TxAttemptEnd ends the attempt's span with its outcome and, when it
// failed, the SQLSTATE and error.type.
func (o *Observer) TxAttemptEnd(ctx context.Context, d txn.TxAttemptEndData) {
	span := trace.SpanFromContext(ctx)
	end := [4]attribute.KeyValue{KeyTxAttempt.Int(d.Attempt), KeyTxOutcome.String(d.Outcome.String())}
	n := 2
	if d.Err != nil {
		if code := retry.SQLState(d.Err); code != "" {
			end[n] = semconv.DBResponseStatusCode(code)
			n++
		}
		et := errorType(d.Err)
		end[n] = semconv.ErrorTypeKey.String(et)
		n++
		span.SetStatus(codes.Error, et)
	}
	span.SetAttributes(end[:n]...)
	span.End()
}

// CommitResolved records how a lost COMMIT was settled, on the call's
// and the attempt's spans and in a counter.
func (o *Observer) CommitResolved(ctx context.Context, d txn.CommitResolvedData) {
	res := d.Status
	if res == "" {
		res = "unknown"
	}
	trace.SpanFromContext(ctx).SetAttributes(KeyTxResolution.String(res))
	if s, ok := ctx.Value(txKey{}).(*txState); ok {
		s.resolution = res
		s.span.AddEvent(EventResolved, trace.WithAttributes(
			KeyTxResolution.String(res), KeyTxOutcome.String(d.Outcome.String()), KeyTxXID.Int64(int64(d.XID)),
		))
	}
	o.m.txResolved.Add(ctx, 1, metric.WithAttributes(txNameAttrs(d.Name,
		KeyTxResolution.String(res), KeyTxOutcome.String(d.Outcome.String()))...))
}

// TxEnd ends the span; for an outermost call it records the duration and
// attempts.
func (o *Observer) TxEnd(ctx context.Context, d txn.TxEndData) {
	s, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return
	}
	outcome := KeyTxOutcome.String(d.Outcome.String())
	span := s.span
	// One SetAttributes per span: each call may grow the span's slice.
	end := [4]attribute.KeyValue{KeyTxAttempts.Int(d.Attempts), outcome}
	n := 2
	if s.resolution != "" {
		end[n] = KeyTxResolution.String(s.resolution)
		n++
	}
	if d.Err != nil {
		et := errorType(d.Err)
		end[n] = semconv.ErrorTypeKey.String(et)
		n++
		span.SetStatus(codes.Error, et)
	}
	span.SetAttributes(end[:n]...)
	span.End()
	if s.nested {
		return
	}
	opts := o.txOutcomeOpts(d.Name, d.Outcome)
	o.m.txDuration.Record(ctx, d.Duration.Seconds(), opts...)
	o.m.txAttempts.Record(ctx, int64(d.Attempts), opts...)
}

// outcomeKey identifies the attribute set of a transaction's metrics.
type outcomeKey struct {
	name    string
	outcome txn.Outcome
}

// maxCachedOutcomes bounds txOutcomeOpts' cache; names past it are
// served uncached.
const maxCachedOutcomes = 1024

// txOutcomeOpts is the record options for txn.outcome and txn.name, made
// once per pair: building an attribute set sorts and allocates, and so
// does a variadic argument list that is not an existing slice.
func (o *Observer) txOutcomeOpts(name string, outcome txn.Outcome) []metric.RecordOption {
	k := outcomeKey{name, outcome}
	if v, ok := o.outcomeOpts.Load(k); ok {
		return v.([]metric.RecordOption)
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(txNameAttrs(name, KeyTxOutcome.String(outcome.String()))...))}
	if o.cachedOutcomes.Add(1) <= maxCachedOutcomes {
		o.outcomeOpts.Store(k, opts)
	}
	return opts
}

// TxLeak counts transactions open longer than their LeakThreshold.
func (o *Observer) TxLeak(d txn.TxLeakData) {
	o.m.txLeaks.Add(context.Background(), 1, metric.WithAttributes(txNameAttrs(d.Name)...))
}

// txNameAttrs is attrs with txn.name added when the name was set.
func txNameAttrs(name string, attrs ...attribute.KeyValue) []attribute.KeyValue {
	if name != "" {
		attrs = append(attrs, KeyTxName.String(name))
	}
	return attrs
}

// errorType names an error by kind, never by its text: a server message
// can quote a value from a statement.
func errorType(err error) string {
	var st interface{ SQLState() string }
	switch {
	case err == nil:
		return ""
	case errors.Is(err, txn.ErrCommitUnknown):
		return "commit_unknown"
	case errors.As(err, &st) && st.SQLState() != "":
		return st.SQLState()
	case errors.Is(err, retry.ErrExhausted):
		return "retry_exhausted"
	case errors.Is(err, advisory.ErrNotAcquired):
		return "not_acquired"
	case errors.Is(err, advisory.ErrLockLost):
		return "lock_lost"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// since is the start time of something that has lasted d until now.
func since(d time.Duration) time.Time { return time.Now().Add(-d) }

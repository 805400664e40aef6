package txotel

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/isolation"
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
// allocation where context.WithValue and the state would make two. The
// span's attributes are set in one call at its end (each call to
// SetAttributes can grow the span's slice, and attributes given to
// tracer.Start are copied twice on the way), from the call's txKind.
type txState struct {
	context.Context
	span       trace.Span
	kind       *txKind
	nested     bool
	resolution string
}

func (s *txState) Value(key any) any {
	if key == (txKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// numOutcomes is the number of txn.Outcome values, the size of the
// per-outcome arrays of txKind.
const numOutcomes = int(txn.CommitUnknown) + 1

// kindKey identifies a txKind: what TxStart is told of a call.
type kindKey struct {
	name     string
	level    isolation.Level
	readOnly bool
}

// numLevels is the number of isolation levels, the size of nameKinds'
// array.
const numLevels = int(isolation.Serializable) + 1

// nameKinds is the kinds of the calls with one name, by isolation level
// and read-only setting, made as they are first seen. The Observer's
// cache is keyed by the name alone, a string, which a sync.Map hashes
// without walking a struct's fields.
type nameKinds struct {
	kinds [numLevels][2]atomic.Pointer[txKind]
}

// txKind is what every call of one kind (name, isolation, read-only)
// records the same, made once for the kind instead of for each call:
// building an attribute slice allocates (an interface method's variadic
// argument escapes), and building an attribute set sorts and allocates.
// Its slices are shared and never written after newTxKind.
type txKind struct {
	// start is the call span's attributes known at its start:
	// db.system.name, txn.isolation, txn.read_only and txn.name (when
	// set).
	start []attribute.KeyValue
	// done[outcome] is start with txn.attempts=1 and txn.outcome: every
	// attribute of a call that ended after one attempt with no error and
	// no lost COMMIT, nested calls included (nil for a kind not cached).
	done [numOutcomes][]attribute.KeyValue
	// record[outcome] records a metric with txn.outcome and txn.name
	// (nil for a kind not cached).
	record [numOutcomes][]metric.RecordOption
}

// maxCachedNames bounds the Observer's cache of txKinds by name; the
// kinds of names past it are made for each call, with only their start
// attributes (one allocation more per call), as are those of a level
// the isolation package does not define.
const maxCachedNames = 1024

func newTxKind(k kindKey, cached bool) *txKind {
	start := make([]attribute.KeyValue, 0, 4)
	start = append(start, semconv.DBSystemNamePostgreSQL,
		KeyTxIsolation.String(k.level.String()), KeyTxReadOnly.Bool(k.readOnly))
	if k.name != "" {
		start = append(start, KeyTxName.String(k.name))
	}
	kind := &txKind{start: start}
	if !cached {
		return kind
	}
	for oc := range numOutcomes {
		outcome := KeyTxOutcome.String(txn.Outcome(oc).String())
		kind.done[oc] = append(slices.Clip(start), KeyTxAttempts.Int(1), outcome)
		kind.record[oc] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(txNameAttrs(k.name, outcome)...))}
	}
	return kind
}

// txKind returns the kind of the call d starts.
func (o *Observer) txKind(d txn.TxStartData) *txKind {
	k := kindKey{d.Name, d.Isolation, d.ReadOnly}
	if k.level < 0 || int(k.level) >= numLevels {
		return newTxKind(k, false)
	}
	v, ok := o.kinds.Load(d.Name)
	if !ok {
		if o.cachedNames.Add(1) > maxCachedNames {
			return newTxKind(k, false)
		}
		v, _ = o.kinds.LoadOrStore(d.Name, new(nameKinds))
	}
	p := &v.(*nameKinds).kinds[k.level][boolIndex(k.readOnly)]
	if kind := p.Load(); kind != nil {
		return kind
	}
	p.CompareAndSwap(nil, newTxKind(k, true))
	return p.Load()
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// outcomeIndex is outcome as an index of txKind's arrays, or -1 for a
// value txn does not define.
func outcomeIndex(outcome txn.Outcome) int {
	if outcome < 0 || int(outcome) >= numOutcomes {
		return -1
	}
	return int(outcome)
}

// spanStartOptions are the options every call's span starts with, made
// once: a variadic list built per call escapes to the heap.
var spanStartOptions = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// TxStart starts the call's span: SpanTx for an outermost call,
// SpanSavepoint for a nested one. Its attributes are set when it ends.
func (o *Observer) TxStart(ctx context.Context, d txn.TxStartData) context.Context {
	name := SpanTx
	if d.Nested {
		name = SpanSavepoint
	}
	ctx, span := o.tracer.Start(ctx, name, spanStartOptions...)
	return &txState{Context: ctx, span: span, kind: o.txKind(d), nested: d.Nested}
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

// TxAttemptStart starts a SpanAttempt span, a child of the call's span,
// for a retry (for every attempt with Options.SpanEveryAttempt); the
// attempt's statements nest under it. The first attempt otherwise runs
// in the call's span. Its attributes are all set at its end, in one
// call: a span's attributes cost an allocation each time they are added
// to.
func (o *Observer) TxAttemptStart(ctx context.Context, d txn.TxAttemptStartData) context.Context {
	if d.Attempt < o.firstAttempt {
		return ctx
	}
	ctx, _ = o.tracer.Start(ctx, SpanAttempt)
	return ctx
}

// firstAttemptDone[outcome] is the attributes of a first attempt's span
// (Options.SpanEveryAttempt) that ended without error, made once: a
// slice built per call escapes to the heap.
var firstAttemptDone = func() (a [numOutcomes][]attribute.KeyValue) {
	for oc := range numOutcomes {
		a[oc] = []attribute.KeyValue{KeyTxAttempt.Int(1), KeyTxOutcome.String(txn.Outcome(oc).String())}
	}
	return a
}()

// TxAttemptEnd ends the attempt's span with its outcome and, when it
// failed, the SQLSTATE and error.type.
func (o *Observer) TxAttemptEnd(ctx context.Context, d txn.TxAttemptEndData) {
	if d.Attempt < o.firstAttempt {
		return // it ran in the call's span, ended by TxEnd
	}
	span := trace.SpanFromContext(ctx)
	if oc := outcomeIndex(d.Outcome); d.Attempt == 1 && d.Err == nil && oc >= 0 {
		span.SetAttributes(firstAttemptDone[oc]...)
		span.End()
		return
	}
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
	attempt := trace.SpanFromContext(ctx)
	if s, ok := ctx.Value(txKey{}).(*txState); ok {
		s.resolution = res
		s.span.AddEvent(EventResolved, trace.WithAttributes(
			KeyTxResolution.String(res), KeyTxOutcome.String(d.Outcome.String()), KeyTxXID.Int64(int64(d.XID)),
		))
		if attempt.SpanContext().SpanID() == s.span.SpanContext().SpanID() {
			attempt = nil // the attempt ran in the call's span: TxEnd sets it
		}
	}
	if attempt != nil {
		attempt.SetAttributes(KeyTxResolution.String(res))
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
	span, kind, oc := s.span, s.kind, outcomeIndex(d.Outcome)
	if d.Err == nil && s.resolution == "" && d.Attempts == 1 && oc >= 0 && kind.done[oc] != nil {
		span.SetAttributes(kind.done[oc]...)
	} else {
		attrs := make([]attribute.KeyValue, len(kind.start), len(kind.start)+4)
		copy(attrs, kind.start)
		attrs = append(attrs, KeyTxAttempts.Int(d.Attempts), KeyTxOutcome.String(d.Outcome.String()))
		if s.resolution != "" {
			attrs = append(attrs, KeyTxResolution.String(s.resolution))
		}
		if d.Err != nil {
			et := errorType(d.Err)
			attrs = append(attrs, semconv.ErrorTypeKey.String(et))
			span.SetStatus(codes.Error, et)
		}
		span.SetAttributes(attrs...)
	}
	span.End()
	if s.nested {
		return
	}
	var opts []metric.RecordOption
	if oc >= 0 {
		opts = kind.record[oc]
	}
	if opts == nil {
		opts = []metric.RecordOption{metric.WithAttributes(txNameAttrs(d.Name, KeyTxOutcome.String(d.Outcome.String()))...)}
	}
	o.m.txDuration.Record(ctx, d.Duration.Seconds(), opts...)
	o.m.txAttempts.Record(attemptsCtx(ctx, d.Attempts), int64(d.Attempts), opts...)
}

// attemptsCtx is the ctx txkit.tx.attempts is recorded with: ctx, whose
// sampled span makes the SDK keep an exemplar, for a call that was
// retried; for a call of one attempt a ctx with no span, so that the
// value 1 is counted without an exemplar. Its exemplar would point at
// the same trace as txkit.tx.duration's and say nothing about retries,
// and taking one costs a clock read and the reservoir's work.
func attemptsCtx(ctx context.Context, attempts int) context.Context {
	if attempts > 1 {
		return ctx
	}
	return context.Background()
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

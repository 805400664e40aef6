package txotel

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of txotel's tracer and meter.
const ScopeName = "github.com/txkit/txkit/txotel"

// ErrInvalid is matched by the error [New] returns when an instrument
// cannot be made.
var ErrInvalid = errors.New("txotel: invalid options")

// Options configure [New]. The zero value uses the global providers.
type Options struct {
	// TracerProvider makes the tracer; nil = otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the meter; nil = otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// LockNames puts advisory lock names on metrics as advisory.name.
	// Off by default: a name made per row or per job would make one time
	// series each. Spans always carry the name.
	LockNames bool
	// SpanEveryAttempt gives every attempt of a transaction a "txn.attempt"
	// span, the first one included. Off by default: the first attempt runs
	// in the "txn.WithTx" span itself (its BEGIN, statements and COMMIT or
	// ROLLBACK are that span's children), and each retry is a
	// "txn.attempt" child. Most transactions commit at their first
	// attempt, where an attempt span would repeat the call's span at
	// nearly the cost of a second span per transaction.
	SpanEveryAttempt bool
}

// Observer turns txkit's events into spans and metrics. It implements
// every txn, locks and advisory event interface but
// txn.CallbackPanicObserver (implementing it would make a panic in an
// AfterCommit callback be swallowed instead of going on); use one
// Observer for the whole program. It is safe for concurrent use.
type Observer struct {
	tracer    trace.Tracer
	meter     metric.Meter
	lockNames bool
	// firstAttempt is the number of the first attempt that gets a span
	// of its own: 1 with Options.SpanEveryAttempt, else 2.
	firstAttempt int
	m            instruments

	kinds       sync.Map // txn.Options.Name → *nameKinds
	cachedNames atomic.Int64
}

// New makes an Observer. It fails only if the meter refuses an instrument.
func New(o Options) (*Observer, error) {
	tp := o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	mp := o.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	obs := &Observer{tracer: tp.Tracer(ScopeName), meter: mp.Meter(ScopeName), lockNames: o.LockNames, firstAttempt: 2}
	if o.SpanEveryAttempt {
		obs.firstAttempt = 1
	}
	if err := obs.m.init(obs.meter); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return obs, nil
}

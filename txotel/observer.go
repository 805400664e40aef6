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
	m         instruments

	outcomeOpts    sync.Map // outcomeKey → []metric.RecordOption
	cachedOutcomes atomic.Int64
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
	obs := &Observer{tracer: tp.Tracer(ScopeName), meter: mp.Meter(ScopeName), lockNames: o.LockNames}
	if err := obs.m.init(obs.meter); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return obs, nil
}

package txotel

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// Bucket boundaries, in seconds, for the duration histograms: from a
// millisecond to a minute.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Bucket boundaries for attempts per transaction.
var attemptBuckets = []float64{1, 2, 3, 4, 5, 10}

// instruments are txotel's own metrics (the pool's are in pool.go).
type instruments struct {
	txDuration  metric.Float64Histogram
	txAttempts  metric.Int64Histogram
	txRetries   metric.Int64Counter
	txResolved  metric.Int64Counter
	txLeaks     metric.Int64Counter
	lockWait    metric.Float64Histogram
	lockHold    metric.Float64Histogram
	lockLost    metric.Int64Counter
	lockNotAcq  metric.Int64Counter
	lockLeaks   metric.Int64Counter
	optConflict metric.Int64Counter
	rowLockWait metric.Float64Histogram
	leaderships metric.Int64Counter
	leader      metric.Int64UpDownCounter
}

func (m *instruments) init(meter metric.Meter) error {
	var errs []error
	fh := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	ctr := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m.txDuration = fh("txkit.tx.duration", "Duration of outermost WithTx calls, retries and backoff included, by outcome.")
	var err error
	m.txAttempts, err = meter.Int64Histogram("txkit.tx.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts per outermost WithTx call."), metric.WithExplicitBucketBoundaries(attemptBuckets...))
	errs = append(errs, err)
	m.txRetries = ctr("txkit.tx.retries", "{retry}", "Attempts that failed and were retried, by SQLSTATE.")
	m.txResolved = ctr("txkit.tx.commit_resolutions", "{resolution}", "Lost COMMIT answers settled by asking the server, by outcome.")
	m.txLeaks = ctr("txkit.tx.leaks", "{transaction}", "Transactions open longer than txn.Options.LeakThreshold.")
	m.lockWait = fh("txkit.advisory.wait_time", "Time advisory lock calls took to return, with or without the lock.")
	m.lockHold = fh("txkit.advisory.hold_time", "Time session advisory locks were held, until released or lost.")
	m.lockLost = ctr("txkit.advisory.losses", "{lock}", "Session advisory locks found lost.")
	m.lockNotAcq = ctr("txkit.advisory.not_acquired", "{call}", "Lock calls that returned advisory.ErrNotAcquired.")
	m.lockLeaks = ctr("txkit.advisory.leaks", "{lock}", "Session advisory locks garbage collected without Release.")
	m.optConflict = ctr("txkit.optimistic.conflicts", "{conflict}", "Optimistic version conflicts, by table.")
	m.rowLockWait = fh("txkit.locks.wait_time", "Time locking reads took, from sending the statement until its rows were read, by outcome.")
	m.leaderships = ctr("txkit.advisory.leaderships", "{leadership}", "Leaderships won by advisory.Lead in this process: the leader changes it took part in.")
	m.leader, err = meter.Int64UpDownCounter("txkit.advisory.leader", metric.WithUnit("{leadership}"),
		metric.WithDescription("Leaderships this process holds now: 1 while it leads, 0 otherwise, per name with LockNames."))
	errs = append(errs, err)
	return errors.Join(errs...)
}

package locks

import (
	"context"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// Observer receives row-lock events: any value that implements
// [RowLockStartObserver], [RowLockEndObserver] or both, found by type
// assertion, as txn.Observer's events are (see the txkit package
// documentation for the convention). A value that implements neither is
// refused with [ErrInvalid].
//
// A locking read reports to [Options.Observer] when it is set, else to
// the Observer of the txn.WithTx transaction in ctx (txn.ObserverFrom),
// so that one observer set on the transaction sees its row-lock waits
// too. [Queue.Claim] reports to its Tx.Observer (or the enclosing
// transaction's).
//
// Events carry the lock's strength and wait policy, never the SQL text,
// its arguments or the keys locked. Methods are called on the caller's
// goroutine, must be quick, must not use the transaction, and must be safe
// for concurrent use.
type Observer any

// RowLockStartObserver receives the start of every locking read.
type RowLockStartObserver interface {
	// RowLockStart is called before the locking statement is sent. The
	// returned ctx is the one the statement is sent with, and is passed
	// to RowLockEnd.
	RowLockStart(ctx context.Context, d RowLockStartData) context.Context
}

// RowLockEndObserver receives how every locking read ended.
type RowLockEndObserver interface {
	// RowLockEnd is called once per RowLockStart: when the statement
	// failed, or when its rows were read to the end or closed.
	RowLockEnd(ctx context.Context, d RowLockEndData)
}

// RowLockStartData describes a locking read about to be sent.
type RowLockStartData struct {
	Strength Strength
	Wait     WaitPolicy
	// LockTimeout is the bound this call set on its wait (see
	// [Options.LockTimeout]), or 0 if it left the transaction's
	// lock_timeout as it was.
	LockTimeout time.Duration
}

// RowLockOutcome is how a locking read ended.
type RowLockOutcome int

// Outcomes of a locking read.
const (
	// RowLockAcquired: the statement completed and every row it
	// returned is locked.
	RowLockAcquired RowLockOutcome = iota
	// RowLockNotAvailable: SQLSTATE 55P03 ([ErrLockNotAvailable]), NOWAIT
	// met a locked row or the wait ran past lock_timeout.
	RowLockNotAvailable
	// RowLockSkipped: a SKIP LOCKED read returned no row. Every row it
	// matched was locked by another transaction, or it matched none: the
	// server does not say which.
	RowLockSkipped
	// RowLockFailed: any other error (a deadlock, a statement timeout, a
	// cancelled ctx, ...).
	RowLockFailed
)

func (o RowLockOutcome) String() string {
	switch o {
	case RowLockAcquired:
		return "acquired"
	case RowLockNotAvailable:
		return "not_available"
	case RowLockSkipped:
		return "skipped"
	case RowLockFailed:
		return "failed"
	}
	return "unknown"
}

// RowLockEndData describes how a locking read ended.
type RowLockEndData struct {
	Strength Strength
	Wait     WaitPolicy
	Outcome  RowLockOutcome
	Rows     int // rows returned, each of them locked
	// Duration is from sending the statement until it failed or its rows
	// were read to the end or closed: the lock waits, the rows' transfer,
	// and whatever the caller did between rows.
	Duration time.Duration
	Err      error // nil unless Outcome is RowLockNotAvailable or RowLockFailed
}

// observesAnything reports whether obs implements at least one event
// interface.
func observesAnything(obs Observer) bool {
	switch obs.(type) {
	case RowLockStartObserver, RowLockEndObserver:
		return true
	}
	return false
}

// lockWait is one locking read being observed.
type lockWait struct {
	ctx   context.Context
	end   RowLockEndObserver
	o     Options
	start time.Time
	done  bool
}

// startWait reports the start of a locking read and returns the ctx to
// send it with, and the wait to end, nil when nobody observes it.
func startWait(ctx context.Context, o Options, timeout time.Duration) (context.Context, *lockWait) {
	obs := o.Observer
	if obs == nil {
		obs = txn.ObserverFrom(ctx)
		if obs == nil {
			return ctx, nil
		}
	}
	if s, ok := obs.(RowLockStartObserver); ok {
		ctx = s.RowLockStart(ctx, RowLockStartData{Strength: o.Strength, Wait: o.Wait, LockTimeout: timeout})
	}
	e, ok := obs.(RowLockEndObserver)
	if !ok {
		return ctx, nil
	}
	return ctx, &lockWait{ctx: ctx, end: e, o: o, start: time.Now()}
}

// finish reports the end of the read, once; w may be nil.
func (w *lockWait) finish(err error, rows int) {
	if w == nil || w.done {
		return
	}
	w.done = true
	out := RowLockAcquired
	switch {
	case err != nil && retry.SQLState(err) == pgerrcode.LockNotAvailable:
		out = RowLockNotAvailable
	case err != nil:
		out = RowLockFailed
	case rows == 0 && w.o.Wait == SkipLocked:
		out = RowLockSkipped
	}
	w.end.RowLockEnd(w.ctx, RowLockEndData{Strength: w.o.Strength, Wait: w.o.Wait, Outcome: out, Rows: rows,
		Duration: time.Since(w.start), Err: Classify(err)})
}

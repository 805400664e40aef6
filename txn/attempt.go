package txn

import "context"

// TxAttemptStartObserver receives the start of every attempt of an
// outermost WithTx call. Each TxAttemptStart is followed by exactly one
// TxAttemptEnd for the same attempt, also when BEGIN fails.
type TxAttemptStartObserver interface {
	// TxAttemptStart is called before the attempt's BEGIN. The returned
	// ctx is the attempt's: BEGIN, fn, COMMIT, the attempt's
	// CommitResolved and TxAttemptEnd get it, so that what they do nests
	// under what the observer put in it. TxRetry and TxEnd get the call's
	// ctx, which TxStart returned.
	TxAttemptStart(ctx context.Context, d TxAttemptStartData) context.Context
}

// TxAttemptStartData describes an attempt about to start.
type TxAttemptStartData struct {
	Name    string
	Attempt int // from 1
}

// attemptStart tells opts' observer that an attempt starts, and returns the
// attempt's ctx.
func attemptStart(ctx context.Context, opts *Options, attempt int) context.Context {
	if o, ok := opts.Observer.(TxAttemptStartObserver); ok {
		return o.TxAttemptStart(ctx, TxAttemptStartData{Name: opts.Name, Attempt: attempt})
	}
	return ctx
}

// ObserverFrom returns the Observer of the transaction WithTx put in ctx
// (the outermost call's Options.Observer), or nil when ctx carries no
// transaction or it has no observer. Packages that run statements in that
// transaction, such as locks, send their own events to it when it
// implements their event interfaces.
func ObserverFrom(ctx context.Context) Observer {
	if st := stateFrom(ctx); st != nil {
		return st.obs
	}
	return nil
}

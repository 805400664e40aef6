package txn

import (
	"context"
	"fmt"
	"runtime/debug"
)

// AfterCommit registers fn to run once the transaction in ctx has certainly
// committed: after COMMIT succeeded, or after a lost COMMIT answer was
// confirmed as committed. Callbacks run in the order registered, on the
// goroutine that called WithTx, with WithTx's ctx (which no longer carries
// the transaction), before WithTx returns.
//
// Callbacks registered during an attempt that is retried, or inside a nested
// WithTx whose savepoint is rolled back, are dropped; with a nested WithTx
// they wait for the outermost transaction. A panic in a callback does not
// undo the commit: it is reported to the Observer (a [CallbackPanicObserver])
// and the other callbacks still run; with no Observer that implements
// CallbackPanicObserver, the panic goes on after the other callbacks ran.
//
// Outside a transaction there is nothing to wait for, and fn runs at once.
func AfterCommit(ctx context.Context, fn func(context.Context)) {
	st := stateFrom(ctx)
	if st == nil {
		fn(ctx)
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed.Load() {
		panic("txn: AfterCommit called after fn returned")
	}
	st.callbacks = append(st.callbacks, fn)
}

// runCallbacks runs every callback. A panic is reported to obs; with no
// CallbackPanicObserver to report to, the first panic goes on once all callbacks ran,
// so that it is never lost.
func runCallbacks(ctx context.Context, name string, obs Observer, cbs []func(context.Context)) {
	report, _ := obs.(CallbackPanicObserver)
	var first *CallbackPanicData
	for _, cb := range cbs {
		p := runCallback(ctx, cb)
		if p == nil {
			continue
		}
		p.Name = name
		if report != nil {
			report.CallbackPanic(ctx, *p)
		} else if first == nil {
			first = p
		}
	}
	if first != nil {
		panic(fmt.Sprintf("txn: AfterCommit callback panicked after the transaction committed: %v\n%s", first.Value, first.Stack))
	}
}

func runCallback(ctx context.Context, cb func(context.Context)) (p *CallbackPanicData) {
	defer func() {
		if r := recover(); r != nil {
			p = &CallbackPanicData{Value: r, Stack: debug.Stack()}
		}
	}()
	cb(ctx)
	return nil
}

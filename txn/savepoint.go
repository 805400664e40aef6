package txn

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/internal/invalid"
	"github.com/txkit/txkit/isolation"
)

// nested runs fn inside the transaction already in ctx, in a savepoint:
// released if fn succeeds, rolled back to if fn fails or panics, leaving the
// outer transaction usable. Retrying belongs to the outermost WithTx, so a
// serialization failure or deadlock is returned for it to act on; the
// recorder keeps it too, so that the outermost WithTx restarts the
// transaction even if the outer fn drops this error.
func nested(ctx context.Context, st *txState, opts *Options, fn func(context.Context, pgx.Tx) error) error {
	if err := checkNested(ctx, st, opts); err != nil {
		return err
	}
	if st.closed.Load() {
		return fmt.Errorf("txn: nested WithTx after the outer fn returned: %w", pgx.ErrTxClosed)
	}
	obs, txName := opts.Observer, opts.Name
	if obs == nil {
		obs = st.obs
	}
	if txName == "" {
		txName = st.name
	}
	startObs, _ := obs.(TxStartObserver)
	endObs, _ := obs.(TxEndObserver)
	if startObs == nil && endObs == nil {
		return inSavepoint(ctx, st, fn)
	}
	start := time.Now()
	if startObs != nil {
		ctx = startObs.TxStart(ctx, TxStartData{Name: txName, Isolation: st.level, ReadOnly: st.readOnly, Nested: true})
	}
	err := inSavepoint(ctx, st, fn)
	outcome := Committed
	if err != nil {
		outcome = RolledBack
	}
	if endObs == nil {
		return err
	}
	endObs.TxEnd(ctx, TxEndData{Name: txName, Attempts: 1, Outcome: outcome, Duration: time.Since(start), Err: err})
	return err
}

// inSavepoint runs fn in a new savepoint of st's transaction.
func inSavepoint(ctx context.Context, st *txState, fn func(context.Context, pgx.Tx) error) error {
	name := "txkit_sp_" + strconv.FormatInt(st.savepoints.Add(1), 10)
	if _, err := st.tx.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return err
	}
	st.mu.Lock()
	nCallbacks := len(st.callbacks)
	st.mu.Unlock()

	finished := false
	defer func() {
		// Unset only while fn panics: undo its work before the panic goes
		// on, so that an outer fn that recovers it does not commit it.
		if !finished {
			_ = rollbackTo(ctx, st, name, nCallbacks)
		}
	}()
	fnErr := fn(ctx, st.tx)
	finished = true
	if fnErr == nil && ctx.Err() != nil {
		fnErr = context.Cause(ctx)
	}
	if fnErr == nil {
		// Ended even if ctx is done, so that the outer transaction is
		// left usable, as the caller of a failed step expects.
		ectx, cancel := endContext(ctx)
		defer cancel()
		_, err := st.tx.Exec(ectx, "RELEASE SAVEPOINT "+name)
		return err
	}
	if err := rollbackTo(ctx, st, name, nCallbacks); err != nil {
		return fmt.Errorf("%w (and rolling back to the savepoint failed: %w)", fnErr, err)
	}
	return withServerCause(fnErr, st.rec.get(), st.policy)
}

// rollbackTo rolls back to savepoint name and drops the AfterCommit
// callbacks registered since it was made (the first keep of them). The
// savepoint is ended even if ctx is done.
func rollbackTo(ctx context.Context, st *txState, name string, keep int) error {
	st.mu.Lock()
	st.callbacks = st.callbacks[:keep]
	st.mu.Unlock()
	ectx, cancel := endContext(ctx)
	defer cancel()
	_, err := st.tx.Exec(ectx, "ROLLBACK TO SAVEPOINT "+name+"; RELEASE SAVEPOINT "+name)
	return err
}

// checkNested refuses options a savepoint cannot honour. Timeouts and Retry
// belong to the outermost transaction and are ignored here.
func checkNested(ctx context.Context, st *txState, opts *Options) error {
	var p invalid.Problems
	if opts.ReadOnly && !st.readOnly {
		p.Add("ReadOnly inside a read-write transaction (a savepoint cannot be made read-only)")
	}
	if opts.Deferrable {
		p.Add("Deferrable inside a running transaction")
	}
	if opts.Isolation != isolation.Default && opts.Isolation != st.level {
		outer := st.level
		if outer == isolation.Default {
			// Left to the server: ask it (a round trip only in this case).
			var s string
			if err := st.tx.QueryRow(ctx, "SELECT current_setting('transaction_isolation')").Scan(&s); err != nil {
				return err
			}
			lvl, err := isolation.Parse(s)
			if err != nil {
				return err
			}
			outer = lvl
		}
		if opts.Isolation.Stronger(outer) {
			p.Add("Isolation %v inside a %v transaction (the level is fixed when the transaction starts)", opts.Isolation, outer)
		}
	}
	return p.Err(ErrInvalid)
}

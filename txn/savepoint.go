package txn

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/isolation"
)

// nested runs fn inside the transaction already in ctx, in a savepoint:
// released if fn succeeds, rolled back to if it fails, leaving the outer
// transaction usable. Retrying belongs to the outermost WithTx, so a
// serialization failure or deadlock is returned for it to act on.
func nested(ctx context.Context, st *txState, opts *Options, fn func(context.Context, pgx.Tx) error) error {
	if err := checkNested(ctx, st, opts); err != nil {
		return err
	}
	if st.closed.Load() {
		return fmt.Errorf("txn: nested WithTx after the outer fn returned: %w", pgx.ErrTxClosed)
	}
	name := "txkit_sp_" + strconv.FormatInt(st.savepoints.Add(1), 10)
	if _, err := st.tx.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return err
	}
	mark := st.rec.get()
	st.mu.Lock()
	nCallbacks := len(st.callbacks)
	st.mu.Unlock()

	// A panic in fn passes through: the outermost WithTx rolls back.
	fnErr := fn(ctx, st.tx)
	// The savepoint is ended even if ctx is done, so that the outer
	// transaction is left usable, as the caller of a failed step expects.
	ectx, cancel := endContext(ctx)
	defer cancel()
	if fnErr == nil && ctx.Err() != nil {
		fnErr = context.Cause(ctx)
	}
	if fnErr == nil {
		_, err := st.tx.Exec(ectx, "RELEASE SAVEPOINT "+name)
		return err
	}
	server := st.rec.get()
	if _, err := st.tx.Exec(ectx, "ROLLBACK TO SAVEPOINT "+name+"; RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("%w (and rolling back to the savepoint failed: %w)", fnErr, err)
	}
	st.mu.Lock()
	st.callbacks = st.callbacks[:nCallbacks]
	st.mu.Unlock()
	if server != mark && st.policy.Retryable(server) {
		// The whole transaction must restart: keep the server's verdict
		// on record for the outermost WithTx even if the outer fn drops
		// this error.
		return withServerCause(fnErr, server, st.policy)
	}
	st.rec.reset(mark)
	return fnErr
}

// checkNested refuses options a savepoint cannot honour. Timeouts, Retry and
// Name belong to the outermost transaction and are ignored here.
func checkNested(ctx context.Context, st *txState, opts *Options) error {
	var problems []string
	if opts.ReadOnly && !st.readOnly {
		problems = append(problems, "ReadOnly inside a read-write transaction (a savepoint cannot be made read-only)")
	}
	if opts.Deferrable {
		problems = append(problems, "Deferrable inside a running transaction")
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
			problems = append(problems, fmt.Sprintf("Isolation %v inside a %v transaction (the level is fixed when the transaction starts)", opts.Isolation, outer))
		}
	}
	if len(problems) > 0 {
		return &optionsError{problems: problems}
	}
	return nil
}

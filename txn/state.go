package txn

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
)

// txState is what WithTx keeps in ctx for the transaction it runs.
type txState struct {
	tx       *recordingTx
	rec      *recorder
	level    isolation.Level // as asked; Default if left to the server
	readOnly bool
	policy   *retry.Policy // the outermost call's, for classifying errors
	obs      Observer      // the outermost call's, for nested calls without one
	name     string        // the outermost call's Name

	savepoints atomic.Int64 // numbers savepoint names
	closed     atomic.Bool  // set when fn returned: AfterCommit is too late then

	mu        sync.Mutex
	callbacks []func(context.Context)

	// tx, rec and the ctx fn gets live here, so that an attempt makes one
	// allocation for all of them.
	txv   recordingTx
	recv  recorder
	ctx   stateContext
	lazyv lazyBegin
}

// stateContext is the ctx WithTx gives fn: its parent with the state
// under ctxKey, as context.WithValue would make it.
type stateContext struct {
	context.Context
	st *txState
}

func (c *stateContext) Value(key any) any {
	if key == (ctxKey{}) {
		return c.st
	}
	return c.Context.Value(key)
}

// newState returns the state of an attempt of tx, and the ctx for fn:
// parent carrying the state.
//
// With lazy's conn set, tx is nil: BEGIN has not been sent, and goes with fn's
// first statement (see lazy.go).
func newState(parent context.Context, tx pgx.Tx, lazy lazyBegin, opts *Options) (*txState, context.Context) {
	s := &txState{
		level:    opts.Isolation,
		readOnly: opts.ReadOnly,
		policy:   opts.Retry,
		obs:      opts.Observer,
		name:     opts.Name,
	}
	s.recv.policy = opts.Retry
	s.rec = &s.recv
	s.txv = recordingTx{inner: tx, rec: s.rec, managed: true}
	if lazy.conn != nil {
		s.lazyv = lazy
		s.txv.lazy = &s.lazyv
	}
	s.tx = &s.txv
	s.ctx = stateContext{Context: parent, st: s}
	return s, &s.ctx
}

func (s *txState) close() { s.closed.Store(true) }

func (s *txState) takeCallbacks() []func(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cbs := s.callbacks
	s.callbacks = nil
	return cbs
}

// withServerCause returns err, or when the server reported a retryable
// error during the attempt and err does not show it (fn wrapped it with %v,
// swallowed it, or returned 25P02 or pgx.ErrTxCommitRollback), an error
// that leads with the server's error, so that the retry decision and
// errors.As see what the server said while errors.Is still finds err.
func withServerCause(err error, server *pgconn.PgError, p *retry.Policy) error {
	if server == nil || p.Retryable(err) || !p.Retryable(server) {
		return err
	}
	return &serverCauseError{server: server, err: err}
}

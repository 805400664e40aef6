package txn_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// A statement fn runs under a context of its own that ends mid-query:
// pgx closes the connection, but the error is fn's, returned as it is after
// one attempt, not taken for a broken network and retried.
func TestFnsOwnContextEndingIsFnsError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name   string
		ctx    func(context.Context) (context.Context, context.CancelFunc)
		target error
	}{
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 50*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			stop := time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, func() { stop.Stop(); cancel() }
		}, context.Canceled},
	} {
		attempts := 0
		var fnErr error
		err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: fastRetry(4)}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			if err := insert(1)(ctx, tx); err != nil {
				return err
			}
			sctx, cancel := tc.ctx(ctx)
			defer cancel()
			_, err := tx.Exec(sctx, "SELECT pg_sleep(1)")
			require.True(t, tx.Conn().IsClosed(), "%s: pgx closes the connection when a statement's ctx ends mid-query", tc.name)
			fnErr = fmt.Errorf("slow step: %w", err)
			return fnErr
		})
		require.Equal(t, 1, attempts, tc.name)
		require.ErrorIs(t, err, fnErr, tc.name)
		require.ErrorIs(t, err, tc.target, tc.name)
		require.NotErrorIs(t, err, retry.ErrExhausted, tc.name)
		require.Equal(t, fnErr.Error(), err.Error(), tc.name)
		require.Zero(t, b.count(t), tc.name)
	}
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}

// A connection the network breaks while fn runs, before COMMIT, is a
// transaction that did not commit: it runs again on another connection.
func TestConnectionCutBeforeCommitRunsAgain(t *testing.T) {
	t.Parallel()
	// One connection, so the second attempt dials a fresh one instead of
	// meeting an idle one the cut also ended.
	pool, proxy := proxiedPoolOn(t, pgtest.NewDatabase(t), func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)

	attempts := 0
	err = txn.WithTx(ctx, pool, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		if attempts == 1 {
			proxy.CutAll()
			_, err := tx.Exec(ctx, "SELECT 1")
			require.Error(t, err)
			return err
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, attempts)
	var rows int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM items WHERE id = 1").Scan(&rows))
	require.Equal(t, 1, rows)
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// commitHook calls onCommit when WithTx starts a COMMIT while armed.
type commitHook struct {
	armed    atomic.Bool
	onCommit func()
}

func (h *commitHook) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.EqualFold(d.SQL, "commit") && h.armed.CompareAndSwap(true, false) {
		h.onCommit()
	}
	return ctx
}

func (h *commitHook) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Once COMMIT is on its way, cancelling ctx does not abandon it: WithTx
// waits for the answer, which arrives only after the cancel, and reports
// the commit, without having to ask the server about a lost answer.
func TestCancelDuringCommitDoesNotAbandonIt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook := &commitHook{}
	pool, proxy := proxiedPoolOn(t, pgtest.NewDatabase(t), func(cfg *pgxpool.Config) { cfg.ConnConfig.Tracer = hook })
	_, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)

	// The proxy holds every byte from the end of fn on, so COMMIT's
	// answer cannot arrive before ctx is cancelled.
	resumed := make(chan struct{})
	hook.onCommit = func() {
		go func() {
			cancel()
			proxy.Stall(false)
			close(resumed)
		}()
	}
	obs := &resolutionObserver{}
	err = txn.WithTx(ctx, pool, txn.Options{Retry: retry.Never(), Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		hook.armed.Store(true)
		proxy.Stall(true)
		return nil
	})
	<-resumed
	require.NoError(t, err)
	require.Error(t, ctx.Err(), "ctx was cancelled while COMMIT was in flight")
	require.Empty(t, obs.take(), "the answer was waited for, not lost and asked about")
	var rows int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM items WHERE id = 1").Scan(&rows))
	require.Equal(t, 1, rows)
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// plainBeginner is a Beginner WithTx cannot see through: it gets pgx's
// transaction and nothing else.
type plainBeginner struct{ pool *pgxpool.Pool }

func (p plainBeginner) BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error) {
	return p.pool.BeginTx(ctx, o)
}

// With a Beginner whose connection WithTx cannot reach, a lost COMMIT
// answer cannot be asked about: the error matches ErrCommitUnknown, and
// the transaction is not run again.
func TestOtherBeginnerGetsCommitUnknown(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)

	proxy.ArmCommitFault(faultproxy.CutBeforeAnswer)
	attempts := 0
	err = txn.WithTx(ctx, plainBeginner{pool}, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
		attempts++
		return insert(1)(ctx, tx)
	})
	require.ErrorIs(t, err, txn.ErrCommitUnknown)
	require.NotErrorIs(t, err, retry.ErrExhausted)
	require.Equal(t, 1, attempts)
	require.Equal(t, int64(1), proxy.Commits())

	// Without a fault it commits as usual.
	require.NoError(t, txn.WithTx(ctx, plainBeginner{pool}, txn.Options{}, insert(2)))
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// A READ ONLY transaction whose COMMIT answer is lost is a success only
// where COMMIT cannot refuse it: below SERIALIZABLE, or SERIALIZABLE
// DEFERRABLE. A SERIALIZABLE READ ONLY transaction that is not DEFERRABLE
// can fail 40001 at COMMIT, so its reads are not handed back: it runs
// again, and with no attempt left the outcome is unknown. So is one whose
// level is left to the server, which may be SERIALIZABLE.
func TestReadOnlyLostAnswerIsSuccessOnlyWhereCommitCannotFail(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	read := func(attempts *int) func(ctx context.Context, tx pgx.Tx) (int, error) {
		return func(ctx context.Context, tx pgx.Tx) (int, error) {
			*attempts++
			var n int
			err := tx.QueryRow(ctx, "SELECT 42").Scan(&n)
			return n, err
		}
	}
	for _, tc := range []struct {
		opts txn.Options
		safe bool
	}{
		{txn.Options{Isolation: isolation.ReadCommitted}, true},
		{txn.Options{Isolation: isolation.RepeatableRead}, true},
		{txn.Options{Isolation: isolation.Serializable, Deferrable: true}, true},
		{txn.Options{Isolation: isolation.Serializable}, false},
		{txn.Options{}, false},
	} {
		obs := &resolutionObserver{}
		opts := tc.opts
		opts.ReadOnly, opts.Retry, opts.Observer = true, fastRetry(3), obs
		name := fmt.Sprintf("%v deferrable=%v", opts.Isolation, opts.Deferrable)
		proxy.ArmCommitFault(faultproxy.CutBeforeAnswer)
		attempts := 0
		n, err := txn.WithTxValue(ctx, pool, opts, read(&attempts))
		require.NoError(t, err, name)
		require.Equal(t, 42, n, name)
		got := obs.take()
		require.Len(t, got, 1, name)
		if tc.safe {
			require.Equal(t, 1, attempts, name)
			require.Equal(t, txn.Committed, got[0].Outcome, name)
			continue
		}
		require.Equal(t, 2, attempts, "%s: run again, not reported as committed", name)
		require.Equal(t, txn.CommitUnknown, got[0].Outcome, name)

		opts.Retry = retry.Never()
		proxy.ArmCommitFault(faultproxy.CutBeforeAnswer)
		attempts = 0
		n, err = txn.WithTxValue(ctx, pool, opts, read(&attempts))
		require.ErrorIs(t, err, txn.ErrCommitUnknown, name)
		require.Zero(t, n, name)
		require.Equal(t, 1, attempts, name)
	}
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// wire records what clients write to the server.
type wire struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *wire) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, w: w}, nil
}

func (w *wire) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.buf.String()
	w.buf.Reset()
	return s
}

type wireConn struct {
	net.Conn
	w *wire
}

func (c *wireConn) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	c.w.buf.Write(p)
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

// A read-only transaction sends no transaction-id request, whatever its
// level; a read-write one sends it with COMMIT (a fast-path call of
// pg_current_xact_id_if_assigned, found by its bytes on the wire).
func TestReadOnlySendsNoTransactionIDQuery(t *testing.T) {
	t.Parallel()
	w := &wire{}
	b := setup(t, func(cfg *pgxpool.Config) { cfg.ConnConfig.DialFunc = w.dial })
	xidQuery := txn.XIDRequestWire()
	read := func(ctx context.Context, tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n)
	}
	w.take()
	require.NoError(t, txn.WithTx(b.ctx, b.pool, txn.Options{}, insert(1)))
	sent := w.take()
	require.Contains(t, sent, xidQuery, "the recording sees the query when it is sent")
	for _, opts := range []txn.Options{
		{ReadOnly: true},
		{ReadOnly: true, Isolation: isolation.RepeatableRead},
		{ReadOnly: true, Isolation: isolation.Serializable},
		{ReadOnly: true, Isolation: isolation.Serializable, Deferrable: true},
	} {
		require.NoError(t, txn.WithTx(b.ctx, b.pool, opts, read))
		sent := w.take()
		require.Contains(t, strings.ToLower(sent), "commit")
		require.NotContains(t, sent, xidQuery, "%+v", opts)
	}
}

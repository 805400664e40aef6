package txn_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// router is a txn.Router over one pool that records what WithTx asks and
// tells it.
type router struct {
	pool     *pgxpool.Pool
	position bool                      // ask for the commit position
	retry    func(txn.AttemptEnd) bool // Done's answer; nil: false
	mu       sync.Mutex
	reqs     []txn.RouteRequest
	ends     []txn.AttemptEnd
}

func (r *router) BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error) {
	return r.pool.BeginTx(ctx, o)
}

func (r *router) Route(ctx context.Context, req txn.RouteRequest) (*txn.Routed, error) {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return &txn.Routed{Conn: c, CommitPosition: r.position, Done: func(e txn.AttemptEnd) bool {
		r.mu.Lock()
		r.ends = append(r.ends, e)
		r.mu.Unlock()
		return r.retry != nil && r.retry(e)
	}}, nil
}

func walInsertLSN(ctx context.Context, t *testing.T, q txn.Querier) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, q.QueryRow(ctx, "SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint").Scan(&n))
	return n
}

// WithTx through a Router runs each attempt on the connection Route gave,
// tells Done how it ended, and for a read-write transaction reports a WAL
// position at or after the transaction's own WAL. Read-only transactions
// get no position.
func TestRouterIsToldEachAttemptAndCommitPosition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := &router{pool: b.pool, position: true}
	var inside uint64
	require.NoError(t, txn.WithTx(b.ctx, r, txn.Options{Name: "w"}, func(ctx context.Context, tx pgx.Tx) error {
		if err := insert(1)(ctx, tx); err != nil {
			return err
		}
		inside = walInsertLSN(ctx, t, tx)
		return nil
	}))
	require.NoError(t, txn.WithTx(b.ctx, r, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT 1")
		return err
	}))
	fnErr := errors.New("no")
	require.ErrorIs(t, txn.WithTx(b.ctx, r, txn.Options{}, func(context.Context, pgx.Tx) error { return fnErr }), fnErr)

	require.Equal(t, []txn.RouteRequest{{Attempt: 1, Name: "w"}, {ReadOnly: true, Attempt: 1}, {Attempt: 1}}, r.reqs)
	require.Len(t, r.ends, 3)
	require.True(t, r.ends[0].Committed)
	require.NoError(t, r.ends[0].Err)
	require.GreaterOrEqual(t, r.ends[0].Position, inside, "the position is at or after the transaction's WAL")
	require.True(t, r.ends[1].Committed)
	require.Zero(t, r.ends[1].Position)
	require.False(t, r.ends[2].Committed)
	require.ErrorIs(t, r.ends[2].Err, fnErr)
	require.Equal(t, 1, b.count(t))
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}

// A failure the Router says nothing committed and another attempt may
// take (Done returns true) runs the transaction again; without that, the
// same error ends WithTx after one attempt.
func TestRouterAsksForARetry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, reroute := range []bool{true, false} {
		r := &router{pool: b.pool, retry: func(e txn.AttemptEnd) bool { return reroute && retry.SQLState(e.Err) == "25006" }}
		attempts := 0
		err := txn.WithTx(b.ctx, r, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			if attempts == 1 {
				_, err := tx.Exec(ctx, raise("25006"))
				return err
			}
			return nil
		})
		if reroute {
			require.NoError(t, err)
			require.Equal(t, 2, attempts)
		} else {
			require.Equal(t, "25006", retry.SQLState(err))
			require.Equal(t, 1, attempts)
		}
	}
	require.Zero(t, pgtest.SettledAcquiredConns(b.pool))
}

// A COMMIT whose answer is lost on a Router's connection is settled by
// asking the server, as on a pool: success, not ErrCommitUnknown, and the
// transaction ran once.
func TestRouterLostCommitAnswerIsResolved(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)
	for _, position := range []bool{false, true} {
		r := &router{pool: pool, position: position}
		proxy.ArmCommitFault(faultproxy.CutAfterXID)
		attempts := 0
		id := 1
		if position {
			id = 2
		}
		require.NoError(t, txn.WithTx(ctx, r, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			return insert(id)(ctx, tx)
		}))
		require.Equal(t, 1, attempts)
		require.Len(t, r.ends, 1)
		require.True(t, r.ends[0].Committed)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n))
	require.Equal(t, 2, n)
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// Asking for the commit position costs no round trip: the call rides in
// COMMIT's write.
func TestCommitPositionCostsNoRoundTrip(t *testing.T) {
	t.Parallel()
	var rt *pgtest.RoundTrips
	b := setup(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
	})
	update := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO items (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET n = items.n + 1")
		return err
	}
	count := func(db txn.Beginner) int64 {
		require.NoError(t, txn.WithTx(b.ctx, db, txn.Options{}, update)) // statements prepared
		rt.Reset()
		require.NoError(t, txn.WithTx(b.ctx, db, txn.Options{}, update))
		return rt.Load()
	}
	plain := count(b.pool)
	r := &router{pool: b.pool, position: true}
	routed := count(r)
	require.Equal(t, plain, routed)
	require.Positive(t, r.ends[len(r.ends)-1].Position)
}

// WithTx calls pg_current_wal_insert_lsn by a fixed OID when a Router asks
// for the commit position; the server must agree on it.
func TestPositionOIDMatchesTheCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var oid uint32
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT 'pg_catalog.pg_current_wal_insert_lsn()'::regprocedure::oid").Scan(&oid))
	require.Equal(t, uint32(txn.WALInsertLSNOID), oid)
}

// A Router that asks for a retry after every attempt (Done always true)
// still never gets an attempt run again once something may have
// committed: under every COMMIT fault, no transaction commits twice, a nil
// error means it committed once, and Done is called exactly once per
// Route, also when fn panics.
func TestRouterRetryNeverRerunsAMaybeCommittedAttempt(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE once (id int NOT NULL)")
	require.NoError(t, err)
	r := &router{pool: pool, position: true, retry: func(txn.AttemptEnd) bool { return true }}
	faults := []faultproxy.CommitFault{faultproxy.NoFault, faultproxy.DropCommit, faultproxy.CutAfterXID, faultproxy.CutBeforeAnswer, faultproxy.DropAll}
	for i := range 40 {
		fault := faults[i%len(faults)]
		proxy.ArmCommitFault(fault)
		before := len(r.reqs)
		attempts := 0
		fnErr := errors.New("fn failed")
		run := func() error {
			return txn.WithTx(ctx, r, txn.Options{Retry: fastRetry(3)}, func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				if _, err := tx.Exec(ctx, "INSERT INTO once VALUES ($1)", i); err != nil {
					return err
				}
				switch i % 3 {
				case 1:
					return fnErr
				case 2:
					if attempts == 1 {
						panic("fn panics")
					}
				}
				return nil
			})
		}
		if i%3 == 2 {
			require.PanicsWithValue(t, "fn panics", func() { _ = run() })
		} else {
			err = run()
		}
		proxy.ArmCommitFault(faultproxy.NoFault)
		var rows int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM once WHERE id = $1", i).Scan(&rows))
		r.mu.Lock()
		routes, ends := len(r.reqs)-before, len(r.ends)-before
		r.mu.Unlock()
		require.Equal(t, routes, ends, "iteration %d (%v): Done once per Route", i, fault)
		require.Equal(t, attempts, routes, "iteration %d (%v): one Route per attempt", i, fault)
		require.LessOrEqual(t, rows, 1, "iteration %d (%v): committed twice", i, fault)
		switch {
		case i%3 == 2:
			require.Zero(t, rows, "iteration %d: a panic commits nothing", i)
			require.Equal(t, 1, attempts, "iteration %d: a panic is not retried", i)
		case i%3 == 1:
			require.ErrorIs(t, err, fnErr)
			require.Zero(t, rows)
		case err == nil:
			require.Equal(t, 1, rows, "iteration %d (%v)", i, fault)
		case errors.Is(err, txn.ErrCommitUnknown):
		default:
			require.Zero(t, rows, "iteration %d (%v): %v", i, fault, err)
		}
	}
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

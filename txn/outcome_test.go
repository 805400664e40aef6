package txn_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// resolutionObserver records commit resolutions.
type resolutionObserver struct {
	txn.NopObserver
	mu  sync.Mutex
	got []txn.CommitResolvedData
}

func (o *resolutionObserver) CommitResolved(_ context.Context, d txn.CommitResolvedData) {
	o.mu.Lock()
	o.got = append(o.got, d)
	o.mu.Unlock()
}

func (o *resolutionObserver) take() []txn.CommitResolvedData {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.got
	o.got = nil
	return got
}

// TestCommitOutcomeMatchesTheTable cuts the connection around COMMIT in
// every way the proxy knows, many times, and checks that what WithTx
// reports agrees with what the table holds: success means the row is there
// exactly once, a plain error means it is not, and only ErrCommitUnknown
// may leave either.
func TestCommitOutcomeMatchesTheTable(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE transfers (id int PRIMARY KEY, attempts int NOT NULL)")
	require.NoError(t, err)

	faults := []faultproxy.CommitFault{faultproxy.DropCommit, faultproxy.CutAfterXID, faultproxy.CutBeforeAnswer, faultproxy.DropAll}
	type tally struct{ ok, failed, unknown int }
	results := map[faultproxy.CommitFault]*tally{}
	for _, f := range faults {
		results[f] = &tally{}
	}
	obs := &resolutionObserver{}
	const n = 200
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		fault := faults[rng.IntN(len(faults))]
		proxy.ArmCommitFault(fault)
		attempts, callbacks := 0, 0
		err := txn.WithTx(ctx, pool, txn.Options{Retry: fastRetry(3), Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			txn.AfterCommit(ctx, func(context.Context) { callbacks++ })
			_, err := tx.Exec(ctx, "INSERT INTO transfers (id, attempts) VALUES ($1, $2)", i, attempts)
			return err
		})
		// AfterCommit callbacks run once when WithTx reports the commit
		// (a lost answer resolved as committed included), and never
		// otherwise (resolved as aborted, or unknown).
		if err == nil {
			require.Equal(t, 1, callbacks, "iteration %d (%v)", i, fault)
		} else {
			require.Zero(t, callbacks, "iteration %d (%v): %v", i, fault, err)
		}
		var rows int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM transfers WHERE id = $1", i).Scan(&rows))
		res := results[fault]
		switch {
		case err == nil:
			res.ok++
			require.Equal(t, 1, rows, "iteration %d (%v): WithTx reported success", i, fault)
		case errors.Is(err, txn.ErrCommitUnknown):
			res.unknown++
		default:
			res.failed++
			require.Zero(t, rows, "iteration %d (%v): WithTx reported failure: %v", i, fault, err)
		}
		for _, d := range obs.take() {
			if d.Outcome == txn.Committed && d.XID != 0 {
				require.Equal(t, "committed", d.Status)
			}
		}
	}
	t.Logf("COMMITs seen by the proxy: %d", proxy.Commits())
	for _, f := range faults {
		t.Logf("%-18v success %3d  failure %3d  unknown %3d", f, results[f].ok, results[f].failed, results[f].unknown)
	}
	// The fault modes the xid capture exists for are resolved, not
	// reported as unknown: COMMIT dropped (aborted, retried) and COMMIT
	// processed with its answer lost (committed).
	require.Zero(t, results[faultproxy.DropCommit].unknown+results[faultproxy.DropCommit].failed, "dropped COMMITs are retried to success")
	require.Zero(t, results[faultproxy.CutAfterXID].unknown+results[faultproxy.CutAfterXID].failed, "lost COMMIT answers are resolved as committed")
	require.Equal(t, int64(0), int64(pgtest.SettledAcquiredConns(pool)))
}

// proxiedPool is a pool that reaches a fresh database through a fault proxy.
func proxiedPool(t *testing.T) (*pgxpool.Pool, *faultproxy.Proxy) {
	t.Helper()
	return proxiedPoolOn(t, pgtest.NewDatabase(t))
}

// proxiedPoolOn is proxiedPool on the database dsn names; configure runs
// on the pool's configuration once the proxy is in place.
func proxiedPoolOn(t *testing.T, dsn string, configure ...func(*pgxpool.Config)) (*pgxpool.Pool, *faultproxy.Proxy) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	proxy, err := faultproxy.Interpose(&cfg.ConnConfig.Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.MaxConns = 2
	for _, c := range configure {
		c(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, proxy
}

// A read-only transaction has nothing durable to lose: a lost COMMIT
// answer ends in success (at once, or by running it again where COMMIT
// could have failed; see TestReadOnlyLostAnswerIsSuccessOnlyWhereCommitCannotFail).
func TestReadOnlyCommitWithLostAnswerSucceeds(t *testing.T) {
	t.Parallel()
	pool, proxy := proxiedPool(t)
	ctx := context.Background()
	for _, f := range []faultproxy.CommitFault{faultproxy.CutBeforeAnswer, faultproxy.DropAll, faultproxy.NoFault} {
		proxy.ArmCommitFault(f)
		n, err := txn.WithTxValue(ctx, pool, txn.Options{ReadOnly: true}, func(ctx context.Context, tx pgx.Tx) (int, error) {
			var n int
			err := tx.QueryRow(ctx, "SELECT 42").Scan(&n)
			return n, err
		})
		require.NoError(t, err, f.String())
		require.Equal(t, 42, n)
	}
}

// A read-write transaction that only sends a notification has no
// transaction id before COMMIT (it gets one while committing), so a lost
// COMMIT answer cannot be asked about. WithTx runs it again rather than
// report a commit that may not have happened: a nil return means the
// notification was delivered, at least once.
func TestNoXIDCommitWithLostAnswerRunsAgain(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	pool, proxy := proxiedPoolOn(t, dsn)
	listener := pgtest.Connect(t, dsn) // not through the proxy
	ctx := context.Background()
	_, err := listener.Exec(ctx, "LISTEN events")
	require.NoError(t, err)

	// delivered counts the notifications with payload want that arrive
	// before the marker sent after WithTx returned: notifications are
	// delivered in commit order, so that is every one WithTx's attempts
	// committed, with no waiting on a clock.
	delivered := func(want string) int {
		t.Helper()
		_, err := pool.Exec(ctx, "SELECT pg_notify('events', 'marker')")
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		n := 0
		for {
			msg, err := listener.WaitForNotification(wctx)
			require.NoError(t, err)
			switch msg.Payload {
			case "marker":
				return n
			case want:
				n++
			}
		}
	}

	obs := &resolutionObserver{}
	faults := []faultproxy.CommitFault{faultproxy.DropCommit, faultproxy.CutAfterXID, faultproxy.CutBeforeAnswer, faultproxy.DropAll, faultproxy.NoFault}
	for i, fault := range faults {
		for j, stmt := range []string{"NOTIFY events, '%s'", "SELECT pg_notify('events', '%s')"} {
			payload := fmt.Sprintf("%d-%d", i, j)
			proxy.ArmCommitFault(fault)
			attempts := 0
			err := txn.WithTx(ctx, pool, txn.Options{Retry: fastRetry(3), Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				_, err := tx.Exec(ctx, fmt.Sprintf(stmt, payload))
				return err
			})
			n := delivered(payload)
			t.Logf("%-18v %-10.10s err=%v attempts=%d delivered=%d", fault, stmt, err, attempts, n)
			switch fault {
			case faultproxy.DropCommit:
				// COMMIT never reached the server: run again, delivered once.
				require.NoError(t, err)
				require.Equal(t, 2, attempts)
				require.Equal(t, 1, n)
			case faultproxy.CutAfterXID:
				// COMMIT reached the server, the answer was lost: run
				// again. The first backend's commit may land after the
				// marker, so only "at least once" is certain here.
				require.NoError(t, err)
				require.Equal(t, 2, attempts)
				require.GreaterOrEqual(t, n, 1)
			case faultproxy.NoFault:
				require.NoError(t, err)
				require.Equal(t, 1, n)
			default:
				// The transaction-id query's answer was lost too: nothing
				// says whether the transaction had one.
				require.ErrorIs(t, err, txn.ErrCommitUnknown)
			}
			for _, d := range obs.take() {
				require.NotEqual(t, txn.Committed, d.Outcome, "a lost answer with no transaction id is never taken for a commit")
			}
		}
	}

	// With no attempt left, the error says the outcome is unknown (here
	// COMMIT never reached the server).
	proxy.ArmCommitFault(faultproxy.DropCommit)
	err = txn.WithTx(ctx, pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "NOTIFY events, 'last'")
		return err
	})
	require.ErrorIs(t, err, txn.ErrCommitUnknown)
	require.ErrorIs(t, err, retry.ErrExhausted)
	require.Zero(t, delivered("last"))
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// A lost COMMIT that cannot be settled is a *txn.CommitUnknownError the
// caller can read: the transaction id when its answer arrived, the last
// status the server gave (none here: asking failed), and the cause.
func TestCommitUnknownErrorCarriesTheEvidence(t *testing.T) {
	t.Parallel()
	// Once refuse is set, new connections through the pool's config fail
	// after connecting, so asking the server about the lost COMMIT fails.
	var refuse atomic.Bool
	pool, proxy := proxiedPoolOn(t, pgtest.NewDatabase(t), func(cfg *pgxpool.Config) {
		cfg.ConnConfig.ValidateConnect = func(context.Context, *pgconn.PgConn) error {
			if refuse.Load() {
				return errors.New("refused by the test")
			}
			return nil
		}
	})
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE t (id int)")
	require.NoError(t, err)

	for _, c := range []struct {
		fault   faultproxy.CommitFault
		xidSeen bool // the transaction id's answer arrives before the cut
	}{
		{faultproxy.CutAfterXID, true},
		{faultproxy.DropAll, false},
	} {
		refuse.Store(false)
		proxy.ArmCommitFault(c.fault)
		var xid uint64
		err := txn.WithTx(ctx, pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
				return err
			}
			refuse.Store(true)
			return tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xid)
		})
		require.ErrorIs(t, err, txn.ErrCommitUnknown, c.fault.String())
		var cu *txn.CommitUnknownError
		require.ErrorAs(t, err, &cu, c.fault.String())
		require.NotZero(t, xid)
		if c.xidSeen {
			require.Equal(t, xid, cu.XID, c.fault.String())
		} else {
			require.Zero(t, cu.XID, c.fault.String())
		}
		require.Empty(t, cu.Status, c.fault.String())
		require.Error(t, cu.Cause, c.fault.String())
		require.Same(t, cu.Cause, errors.Unwrap(cu), c.fault.String())
	}
	refuse.Store(false)
	require.Zero(t, pgtest.SettledAcquiredConns(pool))
}

// When the connection asking about a lost COMMIT cannot be made, WithTx
// says so: ErrCommitUnknown with the transaction id, and a CommitResolved
// event whose Err is that error. It does not guess, though here the
// transaction did commit.
func TestLostCommitWithServerUnreachableIsUnknown(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw-do-not-log"
	pool, proxy := proxiedPoolOn(t, pgtest.NewDatabase(t), func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		cfg.ConnConfig.Password = password // trust auth ignores it; errors must not show it
	})
	ctx := context.Background()
	_, err := pool.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY)")
	require.NoError(t, err)

	proxy.Refuse(true) // the open pooled connection stays; new ones fail
	proxy.ArmCommitFault(faultproxy.CutAfterXID)
	obs := &resolutionObserver{}
	err = txn.WithTx(ctx, pool, txn.Options{Retry: retry.Never(), Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO t VALUES (1)")
		return err
	})
	require.ErrorIs(t, err, txn.ErrCommitUnknown)
	var unknown *txn.CommitUnknownError
	require.ErrorAs(t, err, &unknown)
	require.NotZero(t, unknown.XID, "the transaction id arrived before COMMIT was cut")
	require.NotContains(t, err.Error(), password)

	got := obs.take()
	require.Len(t, got, 1)
	require.Equal(t, txn.CommitUnknown, got[0].Outcome)
	require.Equal(t, unknown.XID, got[0].XID)
	require.ErrorIs(t, got[0].Err, txn.ErrCommitUnknown)
	require.Equal(t, err.Error(), got[0].Err.Error())

	proxy.Refuse(false)
	var rows int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows))
	require.Equal(t, 1, rows, "COMMIT was processed; only its answer was lost")
}

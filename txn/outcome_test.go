package txn_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

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
		attempts := 0
		err := txn.WithTx(ctx, pool, txn.Options{Retry: fastRetry(3), Observer: obs}, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			_, err := tx.Exec(ctx, "INSERT INTO transfers (id, attempts) VALUES ($1, $2)", i, attempts)
			return err
		})
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
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	require.NoError(t, err)
	proxy, err := faultproxy.Interpose(&cfg.ConnConfig.Config)
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, proxy
}

// A read-only transaction has nothing durable to lose: a lost COMMIT
// answer is a success, and it sends no transaction-id query.
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

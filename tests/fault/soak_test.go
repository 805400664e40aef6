package fault_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/txn"
)

const (
	soakWorkers   = 16
	soakAccounts  = 4
	soakTransfers = 3000
	soakBalance   = 1000
	// soakMinCalls is how many transfers must finish within the time cap
	// for the run to count: enough to have met every kind of fault many
	// times over.
	soakMinCalls = 300
)

var errInsufficient = errors.New("insufficient funds")

type outcomes struct {
	mu        sync.Mutex
	committed map[uuid.UUID]bool
	unknown   map[uuid.UUID]bool
	failed    map[uuid.UUID]error
	declined  int
}

// TestBankSoakUnderFaults moves money between a few hot accounts at
// SERIALIZABLE while connections are cut (also during COMMIT) and backends
// are terminated, then checks that no money appeared or vanished and that
// the ledger holds exactly what WithTx reported.
func TestBankSoakUnderFaults(t *testing.T) {
	t.Parallel()
	proxied, direct, proxy := proxiedPool(t, soakWorkers)
	ctx := context.Background()
	_, err := direct.Exec(ctx, `
		CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
		CREATE TABLE ledger (id uuid PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL)`)
	require.NoError(t, err)
	_, err = direct.Exec(ctx, "INSERT INTO accounts SELECT g, $1 FROM generate_series(1, $2) g", soakBalance, soakAccounts)
	require.NoError(t, err)

	out := &outcomes{committed: map[uuid.UUID]bool{}, unknown: map[uuid.UUID]bool{}, failed: map[uuid.UUID]error{}}
	var started atomic.Int64
	deadline := time.Now().Add(2 * time.Minute)
	stopFaults := make(chan struct{})
	faultsDone := make(chan map[string]int)
	go func() { faultsDone <- injectFaults(ctx, proxy, direct, stopFaults) }()

	var wg sync.WaitGroup
	for w := range soakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for started.Add(1) <= soakTransfers && time.Now().Before(deadline) {
				transfer(ctx, proxied, rng, out)
			}
		}()
	}
	wg.Wait()
	close(stopFaults)
	faults := <-faultsDone

	// Money is conserved, and the ledger explains every balance.
	var total int64
	require.NoError(t, direct.QueryRow(ctx, "SELECT sum(balance) FROM accounts").Scan(&total))
	require.Equal(t, int64(soakAccounts*soakBalance), total, "total balance changed")
	var mismatched int
	require.NoError(t, direct.QueryRow(ctx, `
		SELECT count(*) FROM accounts a WHERE a.balance <> $1
			+ coalesce((SELECT sum(amount) FROM ledger WHERE dst = a.id), 0)
			- coalesce((SELECT sum(amount) FROM ledger WHERE src = a.id), 0)`, soakBalance).Scan(&mismatched))
	require.Zero(t, mismatched, "a balance disagrees with the ledger")

	// The ledger holds every reported commit, no reported failure, and
	// nothing else but transfers whose outcome was reported unknown.
	rows, err := direct.Query(ctx, "SELECT id FROM ledger")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	require.NoError(t, err)
	inLedger := map[uuid.UUID]bool{}
	for _, id := range ids {
		inLedger[id] = true
		_, failed := out.failed[id]
		require.False(t, failed, "transfer %v reported as failed is in the ledger: %v", id, out.failed[id])
		require.True(t, out.committed[id] || out.unknown[id], "transfer %v in the ledger was never reported", id)
	}
	for id := range out.committed {
		require.True(t, inLedger[id], "transfer %v reported as committed is missing from the ledger", id)
	}
	unknownCommitted := 0
	for id := range out.unknown {
		if inLedger[id] {
			unknownCommitted++
		}
	}
	kinds := map[string]int{}
	for _, err := range out.failed {
		kind := err.Error()
		if errors.Is(err, retry.ErrExhausted) {
			kind = "attempts exhausted, last SQLSTATE " + retry.SQLState(err)
		} else if len(kind) > 90 {
			kind = kind[:90]
		}
		kinds[kind]++
	}
	for k, n := range kinds {
		t.Logf("failed %4d× %s", n, k)
	}
	t.Logf("transfers: %d committed, %d declined, %d failed, %d unknown (%d of those committed); faults: %v",
		len(out.committed), out.declined, len(out.failed), len(out.unknown), unknownCommitted, faults)
	// The share that commits, not how many fit in the time cap: a loaded
	// machine runs fewer calls, and a count against the clock failed there
	// while every correctness check above held.
	calls := len(out.committed) + out.declined + len(out.failed) + len(out.unknown)
	require.GreaterOrEqual(t, calls, soakMinCalls, "too few transfers ran to say anything")
	require.Greater(t, len(out.committed), (calls-out.declined)/2, "most transfers should commit despite the faults")
	require.Greater(t, faults["cut"]+faults["terminate"]+faults["commit"], 10, "faults were injected")
}

func transfer(ctx context.Context, pool *pgxpool.Pool, rng *rand.Rand, out *outcomes) {
	id := uuid.New()
	src := 1 + rng.IntN(soakAccounts)
	dst := 1 + (src+rng.IntN(soakAccounts-1))%soakAccounts
	amount := int64(1 + rng.IntN(50))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := txn.Options{Name: "transfer", Isolation: isolation.Serializable,
		Retry: &retry.Policy{MaxAttempts: 30, InitialInterval: time.Millisecond, MaxInterval: 50 * time.Millisecond}}
	err := txn.WithTx(ctx, pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		var balance int64
		if err := tx.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", src).Scan(&balance); err != nil {
			return err
		}
		if balance < amount {
			return errInsufficient
		}
		if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $2 WHERE id = $1", src, amount); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", dst, amount); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO ledger (id, src, dst, amount) VALUES ($1, $2, $3, $4)", id, src, dst, amount)
		return err
	})
	out.mu.Lock()
	defer out.mu.Unlock()
	switch {
	case err == nil:
		out.committed[id] = true
	case errors.Is(err, errInsufficient):
		out.declined++
	case errors.Is(err, txn.ErrCommitUnknown):
		out.unknown[id] = true
	default:
		out.failed[id] = err
	}
}

// injectFaults cuts every proxied connection, arms a COMMIT fault, or
// terminates a random proxied backend, every few milliseconds until stop
// is closed, and returns how many of each it did.
func injectFaults(ctx context.Context, proxy *faultproxy.Proxy, direct *pgxpool.Pool, stop <-chan struct{}) map[string]int {
	rng := rand.New(rand.NewPCG(42, 42))
	commitFaults := []faultproxy.CommitFault{faultproxy.DropCommit, faultproxy.CutAfterXID, faultproxy.CutBeforeAnswer, faultproxy.DropAll}
	counts := map[string]int{}
	for {
		select {
		case <-stop:
			return counts
		case <-time.After(time.Duration(5+rng.IntN(20)) * time.Millisecond):
		}
		switch rng.IntN(10) {
		case 0:
			proxy.CutAll()
			counts["cut"]++
		case 1, 2, 3:
			var n int
			_ = direct.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM (
				SELECT pid FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'txkit-fault-proxied'
				ORDER BY random() LIMIT 1) s`).Scan(&n)
			counts["terminate"] += n
		default:
			proxy.ArmCommitFault(commitFaults[rng.IntN(len(commitFaults))])
			counts["commit"]++
		}
	}
}

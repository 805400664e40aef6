package bench_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/optimistic"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// workers are the concurrency levels each strategy runs at.
var workers = []int{1, 8, 32}

// policy is the retry policy of the two strategies that retry: no bound on
// attempts (a benchmark must finish its b.N), short jittered waits. The
// same for both, so that they differ only in what makes them retry.
var policy = &retry.Policy{MaxAttempts: -1, InitialInterval: time.Millisecond, MaxInterval: 50 * time.Millisecond}

// strategy increments the counter once and reports how many attempts were
// retried on the way.
type strategy struct {
	name string
	inc  func(ctx context.Context, pool *pgxpool.Pool) (retries int, err error)
}

const (
	selectN = "SELECT n FROM counter WHERE id = 1"
	setN    = "UPDATE counter SET n = $1 WHERE id = 1"
)

type counter struct {
	ID      int
	N       int64
	Version int64
}

var counterTable = optimistic.Table{Name: pgx.Identifier{"counter"}, Key: "id"}

var strategies = []strategy{
	{"atomic", func(ctx context.Context, pool *pgxpool.Pool) (int, error) {
		_, err := pool.Exec(ctx, "UPDATE counter SET n = n + 1 WHERE id = 1")
		return 0, err
	}},
	{"forupdate-pgx", func(ctx context.Context, pool *pgxpool.Pool) (int, error) {
		return 0, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var n int64
			if err := tx.QueryRow(ctx, selectN+" FOR UPDATE").Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, setN, n+1)
			return err
		})
	}},
	{"forupdate", func(ctx context.Context, pool *pgxpool.Pool) (int, error) {
		return 0, txn.WithTx(ctx, pool, txn.Options{}, func(ctx context.Context, tx pgx.Tx) error {
			var n int64
			if err := locks.QueryRow(ctx, tx, locks.Options{}, selectN).Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, setN, n+1)
			return err
		})
	}},
	{"optimistic", func(ctx context.Context, pool *pgxpool.Pool) (int, error) {
		retries := 0
		opts := optimistic.ModifyOptions{Retry: policy, OnConflict: func(*optimistic.ConflictError) { retries++ }}
		_, err := optimistic.Modify(ctx, pool, counterTable, 1, opts, func(c *counter) error {
			c.N++
			return nil
		})
		return retries, err
	}},
	{"serializable", func(ctx context.Context, pool *pgxpool.Pool) (int, error) {
		attempts := 0
		opts := txn.Options{Isolation: isolation.Serializable, Retry: policy}
		err := txn.WithTx(ctx, pool, opts, func(ctx context.Context, tx pgx.Tx) error {
			attempts++
			var n int64
			if err := tx.QueryRow(ctx, selectN).Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, setN, n+1)
			return err
		})
		return attempts - 1, err
	}},
}

// BenchmarkHotRow is the workload the optimistic package's guidance rests
// on: every worker increments the same row, as fast as it can. ns/op is
// wall time per committed increment across all workers (the inverse of
// throughput); retries/op is how many attempts were thrown away per
// increment.
func BenchmarkHotRow(b *testing.B) {
	pool := pgtest.NewPool(b, func(c *pgxpool.Config) { c.MaxConns = int32(workers[len(workers)-1]) })
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE counter (id int PRIMARY KEY, n bigint NOT NULL, version bigint NOT NULL);
		INSERT INTO counter VALUES (1, 0, 0)`); err != nil {
		b.Fatal(err)
	}
	for _, s := range strategies {
		for _, w := range workers {
			b.Run(fmt.Sprintf("%s/workers=%d", s.name, w), func(b *testing.B) {
				hotRow(b, ctx, pool, s, w)
			})
		}
	}
}

func hotRow(b *testing.B, ctx context.Context, pool *pgxpool.Pool, s strategy, w int) {
	// Each run starts from the same table: no dead row versions left by
	// the run before.
	if _, err := pool.Exec(ctx, "UPDATE counter SET n = 0, version = 0"); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM counter"); err != nil {
		b.Fatal(err)
	}
	var (
		next    atomic.Int64
		retries atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  error
	)
	b.ResetTimer()
	start := time.Now()
	for range w {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				r, err := s.inc(ctx, pool)
				retries.Add(int64(r))
				if err != nil {
					errOnce.Do(func() { failed = err })
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	var n int64
	if err := pool.QueryRow(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n != int64(b.N) {
		b.Fatalf("%d increments made, the counter holds %d: updates were lost", b.N, n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "incr/s")
	b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/op")
}

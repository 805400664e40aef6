package txn_test

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
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// BenchmarkTx compares an uncontended one-UPDATE transaction through WithTx
// with the same work written by hand on the same pool, and reports round
// trips per operation. Run:
//
//	go test -run '^$' -bench BenchmarkTx -benchmem ./txn
func BenchmarkTx(b *testing.B) {
	var rt *pgtest.RoundTrips
	pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		rt = pgtest.CountRoundTrips(cfg)
	})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL); INSERT INTO items VALUES (1, 0)"); err != nil {
		b.Fatal(err)
	}
	update := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = $1", 1)
		return err
	}
	read := func(ctx context.Context, tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT n FROM items WHERE id = $1", 1).Scan(&n)
	}
	// The same work queued in a pgx batch behind BEGIN (Batch.BeginTx).
	queueUpdate := func(bt *pgx.Batch) { bt.Queue("UPDATE items SET n = n + 1 WHERE id = $1", 1) }
	queueRead := func(bt *pgx.Batch) {
		bt.Queue("SELECT n FROM items WHERE id = $1", 1).QueryRow(func(row pgx.Row) error {
			var n int
			return row.Scan(&n)
		})
	}
	for _, c := range []struct {
		name  string
		iso   isolation.Level
		ro    bool
		work  func(context.Context, pgx.Tx) error
		queue func(*pgx.Batch)
	}{
		{"update/read-committed", isolation.ReadCommitted, false, update, queueUpdate},
		{"update/serializable", isolation.Serializable, false, update, queueUpdate},
		{"read-only", isolation.ReadCommitted, true, read, queueRead},
	} {
		pgxOpts := pgx.TxOptions{IsoLevel: c.iso.TxIsoLevel()}
		if c.ro {
			pgxOpts.AccessMode = pgx.ReadOnly
		}
		run := func(b *testing.B, op func() error) {
			if err := op(); err != nil { // prepare statements before counting
				b.Fatal(err)
			}
			rt.Reset()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rt.Load())/float64(b.N), "roundtrips/op")
		}
		b.Run(c.name+"/txkit", func(b *testing.B) {
			opts := txn.Options{Isolation: c.iso, ReadOnly: c.ro}
			run(b, func() error { return txn.WithTx(ctx, pool, opts, c.work) })
		})
		b.Run(c.name+"/pgx-manual", func(b *testing.B) {
			run(b, func() error {
				tx, err := pool.BeginTx(ctx, pgxOpts)
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback(ctx) }()
				if err := c.work(ctx, tx); err != nil {
					return err
				}
				return tx.Commit(ctx)
			})
		})
		b.Run(c.name+"/pgx-batched", func(b *testing.B) {
			run(b, func() error {
				conn, err := pool.Acquire(ctx)
				if err != nil {
					return err
				}
				defer conn.Release()
				bt := &pgx.Batch{}
				bt.BeginTx(pgxOpts)
				c.queue(bt)
				br := conn.SendBatch(ctx, bt)
				tx := br.Tx()
				defer func() { _ = tx.Rollback(ctx) }()
				if err := br.Close(); err != nil {
					return err
				}
				return tx.Commit(ctx)
			})
		})
		b.Run(c.name+"/pgx-BeginTxFunc", func(b *testing.B) {
			run(b, func() error {
				return pgx.BeginTxFunc(ctx, pool, pgxOpts, func(tx pgx.Tx) error { return c.work(ctx, tx) })
			})
		})
	}
}

// BenchmarkTxWorkers compares WithTx with hand-written pgx at 1 and 4
// concurrent workers on one pool, each worker updating its own row at READ
// COMMITTED: the uncontended read-write transaction whose COMMIT carries
// the transaction-id request. Hand-written pgx runs it twice: as pgx's
// documentation writes it (BeginTx, Exec, Commit), and with BEGIN batched
// with the UPDATE (Batch.BeginTx), as WithTx sends it. The runners
// alternate in rounds of 100 transactions within one benchmark, so drift
// on a shared machine falls on all alike; it reports each one's time per
// transaction, txkit-vs-pgx, pgx's time over txkit's (1.0: as fast as
// pgx), txkit-vs-pgxbatch, and the CPU time per transaction of the client
// process and, when the server runs on this machine, of the pool's server
// processes. Run:
//
//	go test -run '^$' -bench BenchmarkTxWorkers -count 6 ./txn
func BenchmarkTxWorkers(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			pool := pgtest.NewPool(b, func(cfg *pgxpool.Config) { cfg.MaxConns = int32(workers) })
			ctx := context.Background()
			if _, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL); INSERT INTO items SELECT g, 0 FROM generate_series(1, 4) g"); err != nil {
				b.Fatal(err)
			}
			update := func(id int) func(context.Context, pgx.Tx) error {
				return func(ctx context.Context, tx pgx.Tx) error {
					_, err := tx.Exec(ctx, "UPDATE items SET n = n + 1 WHERE id = $1", id)
					return err
				}
			}
			txkit := func(id int) error {
				return txn.WithTx(ctx, pool, txn.Options{Isolation: isolation.ReadCommitted}, update(id))
			}
			manual := func(id int) error {
				tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback(ctx) }()
				if err := update(id)(ctx, tx); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}
			// The same by hand with BEGIN in one batch with the UPDATE
			// (pgx's Batch.BeginTx), as WithTx sends it.
			batched := func(id int) error {
				c, err := pool.Acquire(ctx)
				if err != nil {
					return err
				}
				defer c.Release()
				bt := &pgx.Batch{}
				bt.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
				bt.Queue("UPDATE items SET n = n + 1 WHERE id = $1", id)
				br := c.SendBatch(ctx, bt)
				tx := br.Tx()
				defer func() { _ = tx.Rollback(ctx) }()
				if err := br.Close(); err != nil {
					return err
				}
				return tx.Commit(ctx)
			}
			// The pool's connections, whose server processes' CPU time is
			// counted too when the server runs on this machine.
			var pids []uint32
			conns := make([]*pgxpool.Conn, workers)
			for i := range conns {
				c, err := pool.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = c
				pids = append(pids, c.Conn().PgConn().PID())
			}
			for _, c := range conns {
				c.Release()
			}
			var spent, cpu, srv [3]time.Duration
			var done [3]int
			b.ResetTimer()
			for round := 0; done[0] < b.N || done[1] < b.N || done[2] < b.N; round++ {
				k := round % 3
				op := [3]func(int) error{txkit, manual, batched}[k]
				n := min(100, b.N-done[k])
				c, sc := cpuTime(), serverCPU(pids)
				d, err := concurrently(workers, n, op)
				if err != nil {
					b.Fatal(err)
				}
				cpu[k] += cpuTime() - c
				srv[k] += serverCPU(pids) - sc
				spent[k] += d
				done[k] += n
			}
			b.StopTimer()
			b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N), "txkit-ns/op")
			b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N), "pgx-ns/op")
			b.ReportMetric(spent[1].Seconds()/spent[0].Seconds(), "txkit-vs-pgx")
			// The client's own CPU time per transaction (user and system,
			// the benchmark process only): what WithTx adds, less
			// dependent on what else runs on the machine than the times.
			b.ReportMetric(float64(cpu[0].Nanoseconds())/float64(b.N), "txkit-cpu-ns/op")
			b.ReportMetric(float64(cpu[1].Nanoseconds())/float64(b.N), "pgx-cpu-ns/op")
			b.ReportMetric(float64(spent[2].Nanoseconds())/float64(b.N), "pgxbatch-ns/op")
			b.ReportMetric(spent[2].Seconds()/spent[0].Seconds(), "txkit-vs-pgxbatch")
			// The server's CPU time per transaction, on this machine only
			// (0 otherwise): a round trip saved is saved there too.
			if srv[0] > 0 {
				b.ReportMetric(float64(srv[0].Nanoseconds())/float64(b.N), "txkit-srvcpu-ns/op")
				b.ReportMetric(float64(srv[1].Nanoseconds())/float64(b.N), "pgx-srvcpu-ns/op")
				b.ReportMetric(float64(cpu[2].Nanoseconds())/float64(b.N), "pgxbatch-cpu-ns/op")
				b.ReportMetric(float64(srv[2].Nanoseconds())/float64(b.N), "pgxbatch-srvcpu-ns/op")
			}
		})
	}
}

// concurrently runs op n times in all, on workers goroutines, each with its
// own id from 1, and returns how long that took.
func concurrently(workers, n int, op func(id int) error) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for id := 1; id <= workers; id++ {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := op(id); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	return d, <-errs
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/examples/internal/report"
	"github.com/txkit/txkit/internal/devdb"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// errChecksFailed is returned by run when a check fails.
var errChecksFailed = errors.New("checks failed")

// tally is what the workers counted.
type tally struct {
	mu                       sync.Mutex
	committed                []int64 // per worker: increments WithTx reported committed
	unknown                  []int64 // per worker: increments with ErrCommitUnknown
	reads                    int64
	staleWith, staleWithout  int64
	readsWith, readsWithout  int64
	errs                     []error
	writesAfterPromotion     int64
	firstWriteAfterPromotion time.Duration
}

// run starts the servers, runs the workers, promotes midway, checks and
// reports. It stops every server it started, on every path.
func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	settings := []string{fmt.Sprintf("recovery_min_apply_delay=%dms", cfg.ApplyDelay.Milliseconds())}
	// The throwaway servers commit asynchronously to start and run fast;
	// the primary here commits as a production server does, so a commit's
	// WAL goes to the replicas at once instead of at the WAL writer's next
	// round, up to 200 ms later, longer than a Session read waits.
	servers, err := devdb.StartReplicated(ctx, devdb.ReplicationOptions{Replicas: 2, Replica: settings,
		Primary: []string{"synchronous_commit=on"}})
	if err != nil {
		return fmt.Errorf("starting a primary and two replicas: %w", err)
	}
	defer func() { err = errors.Join(err, servers.Close()) }()
	var dsns []string
	for _, n := range servers.Nodes() {
		dsns = append(dsns, n.URL())
	}
	c, err := cluster.Open(ctx, dsns, cluster.Options{CheckInterval: 200 * time.Millisecond, MaxLag: 2 * time.Second})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		err = errors.Join(err, c.Close(cctx))
	}()
	if _, err := c.Exec(ctx, "CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL)"); err != nil {
		return err
	}
	if _, err := c.Exec(ctx, "INSERT INTO counters SELECT g, 0 FROM generate_series(1, $1::int) g", cfg.Workers); err != nil {
		return err
	}
	for _, r := range servers.Replicas {
		if err := devdb.WaitReplayed(ctx, servers.Primary, r); err != nil {
			return err
		}
	}

	t := &tally{committed: make([]int64, cfg.Workers), unknown: make([]int64, cfg.Workers), firstWriteAfterPromotion: -1}
	wctx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var promoted time.Time
	var promotedMu sync.Mutex
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Go(func() {
			promotedAt := func() time.Time {
				promotedMu.Lock()
				defer promotedMu.Unlock()
				return promoted
			}
			work(wctx, c, w, t, promotedAt)
		})
	}
	var failover string
	if cfg.Promote {
		select {
		case <-wctx.Done():
		case <-time.After(cfg.Duration / 2):
			start := time.Now()
			servers.Primary.Stop()
			if err := servers.Replicas[0].Promote(ctx); err != nil {
				stop()
				wg.Wait()
				return fmt.Errorf("promoting: %w", err)
			}
			promotedMu.Lock()
			promoted = time.Now()
			promotedMu.Unlock()
			failover = fmt.Sprintf("primary stopped, replica 1 promoted in %v", promoted.Sub(start).Round(time.Millisecond))
			if err := servers.Replicas[1].Follow(ctx, servers.Replicas[0], ""); err != nil {
				failover += fmt.Sprintf("; replica 2 could not follow it: %v", err)
			} else {
				failover += "; replica 2 follows it"
			}
		}
	}
	wg.Wait()

	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	checks, finalPrimary, err := verify(checkCtx, c, cfg, t, servers)
	if err != nil {
		return fmt.Errorf("checking the result: %w", err)
	}
	if err := writeReport(out, cfg, c, t, failover, finalPrimary, checks); err != nil {
		return err
	}
	if report.Failed(checks) {
		return errChecksFailed
	}
	return nil
}

// work is one worker's loop: increment its counter with a Session, read
// it back three times with the Session and once without.
func work(ctx context.Context, c *cluster.Cluster, w int, t *tally, promotedAt func() time.Time) {
	id := w + 1
	sess := cluster.NewSession(0)
	sctx := cluster.WithSession(ctx, sess)
	policy := &retry.Policy{MaxAttempts: 50, InitialInterval: 5 * time.Millisecond, MaxInterval: 100 * time.Millisecond}
	read := func(ctx context.Context) (int64, error) {
		return txn.WithTxValue(ctx, c, txn.Options{ReadOnly: true, Retry: policy}, func(ctx context.Context, tx pgx.Tx) (int64, error) {
			var n int64
			err := tx.QueryRow(ctx, "SELECT n FROM counters WHERE id = $1", id).Scan(&n)
			return n, err
		})
	}
	for ctx.Err() == nil {
		v, err := txn.WithTxValue(sctx, c, txn.Options{Retry: policy}, func(ctx context.Context, tx pgx.Tx) (int64, error) {
			var n int64
			err := tx.QueryRow(ctx, "UPDATE counters SET n = n + 1 WHERE id = $1 RETURNING n", id).Scan(&n)
			return n, err
		})
		t.mu.Lock()
		switch {
		case err == nil:
			t.committed[w]++
			if p := promotedAt(); !p.IsZero() {
				t.writesAfterPromotion++
				if t.firstWriteAfterPromotion < 0 {
					t.firstWriteAfterPromotion = time.Since(p)
				}
			}
		case errors.Is(err, txn.ErrCommitUnknown):
			t.unknown[w]++
		case ctx.Err() != nil:
		default:
			t.errs = append(t.errs, fmt.Errorf("worker %d write: %w", id, err))
		}
		t.mu.Unlock()
		if err != nil {
			continue
		}
		for i := range 4 {
			rctx := sctx
			if i == 3 {
				rctx = ctx
			}
			got, err := read(rctx)
			t.mu.Lock()
			switch {
			case err == nil:
				t.reads++
				stale := got < v
				if i == 3 {
					t.readsWithout++
					if stale {
						t.staleWithout++
					}
				} else {
					t.readsWith++
					if stale {
						t.staleWith++
					}
				}
			case ctx.Err() != nil:
			default:
				t.errs = append(t.errs, fmt.Errorf("worker %d read: %w", id, err))
			}
			t.mu.Unlock()
		}
	}
}

// verify compares each counter on the final primary with the increments
// WithTx reported.
func verify(ctx context.Context, c *cluster.Cluster, cfg config, t *tally, servers *devdb.Replicated) ([]report.Check, string, error) {
	p, err := c.Primary(ctx)
	if err != nil {
		return nil, "", err
	}
	final := p.Config().Hosts[0]
	rows, err := p.Query(ctx, "SELECT id, n FROM counters ORDER BY id")
	if err != nil {
		return nil, "", err
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var v [2]int64
		err := r.Scan(&v[0], &v[1])
		return v, err
	})
	if err != nil {
		return nil, "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lost, extra := 0, 0
	for _, row := range got {
		w := row[0] - 1
		if row[1] < t.committed[w] {
			lost++
		}
		if row[1] > t.committed[w]+t.unknown[w] {
			extra++
		}
	}
	var checks []report.Check
	checks = append(checks,
		report.Check{Name: "no lost commit", OK: lost == 0 && len(got) == cfg.Workers,
			Detail: fmt.Sprintf("%d of %d counters on the final primary hold fewer increments than WithTx reported committed", lost, len(got))},
		report.Check{Name: "no phantom commit", OK: extra == 0,
			Detail: fmt.Sprintf("%d counters hold more than the committed plus the outcome-unknown increments", extra)},
		report.Check{Name: "read-your-writes", OK: t.staleWith == 0,
			Detail: fmt.Sprintf("%d of %d reads with a Session missed the worker's own write", t.staleWith, t.readsWith)},
		report.Check{Name: "no errors", OK: len(t.errs) == 0, Detail: errorsDetail(t.errs)},
	)
	replicaReads := int64(0)
	for _, n := range c.Nodes() {
		if n.Name != final {
			replicaReads += n.Reads
		}
	}
	checks = append(checks, report.Check{Name: "replicas served reads", OK: replicaReads > 0,
		Detail: fmt.Sprintf("%d reads on nodes other than the final primary", replicaReads)})
	if cfg.Promote {
		want := fmt.Sprintf("127.0.0.1:%d", servers.Replicas[0].Port())
		checks = append(checks, report.Check{Name: "writes moved to the promoted node", OK: final == want && t.writesAfterPromotion > 0,
			Detail: fmt.Sprintf("primary now %s, %d writes committed after the promotion", final, t.writesAfterPromotion)})
	}
	return checks, final, nil
}

func errorsDetail(errs []error) string {
	if len(errs) == 0 {
		return "none but ErrCommitUnknown, which is allowed for a COMMIT cut off by the stop"
	}
	return fmt.Sprintf("%d, first: %v", len(errs), errs[0])
}

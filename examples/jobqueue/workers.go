package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/txn"
)

// job is a row of jobqueue_jobs.
type job struct {
	ID      int64
	Payload string
	DoneAt  *time.Time `db:"done_at"`
}

// queue is the jobs table as a work queue: a job is ready until done_at is
// set, and the claim sets it.
var queue = locks.Queue[job]{
	Table: pgx.Identifier{"jobqueue_jobs"},
	Key:   "id",
	Ready: "done_at IS NULL",
	Done:  locks.Done{SetNow: []string{"done_at"}},
	Tx:    txn.Options{Name: "jobqueue.claim"},
}

// errFirstTry is the failure injected into every n-th job's first try.
var errFirstTry = errors.New("failed on its first try")

// results is what the workers did, as they saw it.
type results struct {
	elapsed   time.Duration
	perWorker []int // jobs each worker committed
	committed []int // per job id: commits that processed it
	rollbacks int   // batches rolled back by an injected failure
	err       error // the first unexpected error, or the ctx's
}

// tally collects results from the workers.
type tally struct {
	mu     sync.Mutex
	res    *results
	failed sync.Map // job ids that already failed once
}

func (t *tally) committed(worker int, ids []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.perWorker[worker] += len(ids)
	for _, id := range ids {
		t.res.committed[id]++
	}
}

func (t *tally) rolledBack() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.rollbacks++
}

func (t *tally) fail(worker int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.res.err == nil {
		t.res.err = fmt.Errorf("worker %d: %w", worker, err)
	}
}

// drain runs the workers until the queue is empty or ctx ends.
func drain(ctx context.Context, pool *pgxpool.Pool, cfg config) *results {
	t := &tally{res: &results{perWorker: make([]int, cfg.Workers), committed: make([]int, cfg.Jobs+1)}}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range cfg.Workers {
		wg.Go(func() {
			if err := work(ctx, pool, cfg, w, t); err != nil {
				t.fail(w, err)
			}
		})
	}
	wg.Wait()
	t.res.elapsed = time.Since(start)
	return t.res
}

// work claims batches until none is left. A worker that finds nothing to
// claim stops: whatever is not done then is held by workers still running,
// which commit it or roll it back and claim it again themselves.
func work(ctx context.Context, pool *pgxpool.Pool, cfg config, worker int, t *tally) error {
	for {
		n, err := queue.Claim(ctx, pool, cfg.Batch, func(ctx context.Context, tx pgx.Tx, jobs []job) error {
			return process(ctx, tx, cfg, worker, t, jobs)
		})
		switch {
		case errors.Is(err, errFirstTry):
			t.rolledBack()
		case err != nil:
			return err
		case n == 0:
			return nil
		}
	}
}

// process does a batch's work inside the claiming transaction: its results
// commit with the claim, or neither does.
func process(ctx context.Context, tx pgx.Tx, cfg config, worker int, t *tally, jobs []job) error {
	ids := make([]int64, len(jobs))
	outs := make([]string, len(jobs))
	for i, j := range jobs {
		if cfg.FailEvery > 0 && j.ID%int64(cfg.FailEvery) == 0 {
			if _, again := t.failed.LoadOrStore(j.ID, true); !again {
				return fmt.Errorf("job %d: %w", j.ID, errFirstTry)
			}
		}
		ids[i], outs[i] = j.ID, strings.ToUpper(j.Payload)
	}
	_, err := tx.Exec(ctx, `INSERT INTO jobqueue_results (job_id, worker, result)
		SELECT unnest($1::bigint[]), $2, unnest($3::text[])`, ids, worker, outs)
	if err != nil {
		return err
	}
	// Counted only once the claim and the results are committed.
	txn.AfterCommit(ctx, func(context.Context) { t.committed(worker, ids) })
	return nil
}

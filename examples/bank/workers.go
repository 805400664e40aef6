package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// stats is what one worker, or all of them together, saw.
type stats struct {
	calls    int            // WithTx calls
	attempts int            // runs of fn, counted inside fn
	commits  int            // WithTx calls that returned nil
	retries  map[string]int // TxRetry events from the Observer, by SQLSTATE
	failures map[string]int // WithTx calls that returned an error, by kind
	examples map[string]string

	latencies []time.Duration // of each committed call, retries included
	committed []uuid.UUID     // transfers WithTx reported committed
	unknown   []uuid.UUID     // transfers whose commit outcome is unknown
}

func newStats() *stats {
	return &stats{retries: map[string]int{}, failures: map[string]int{}, examples: map[string]string{}}
}

func (s *stats) add(o *stats) {
	s.calls += o.calls
	s.attempts += o.attempts
	s.commits += o.commits
	for k, n := range o.retries {
		s.retries[k] += n
	}
	for k, n := range o.failures {
		s.failures[k] += n
		if _, ok := s.examples[k]; !ok {
			s.examples[k] = o.examples[k]
		}
	}
	s.latencies = append(s.latencies, o.latencies...)
	s.committed = append(s.committed, o.committed...)
	s.unknown = append(s.unknown, o.unknown...)
}

func (s *stats) totalRetries() int {
	n := 0
	for _, c := range s.retries {
		n += c
	}
	return n
}

// results is the outcome of a run: the total and each worker's share.
type results struct {
	elapsed   time.Duration
	total     *stats
	perWorker []*stats
}

// runWorkers runs cfg.Workers workers until cfg.Duration has passed or ctx
// is cancelled. A transfer in flight when the time is up is finished, not
// cancelled, so that its outcome is known.
func runWorkers(ctx context.Context, pool *pgxpool.Pool, cfg config) *results {
	res := &results{total: newStats(), perWorker: make([]*stats, cfg.Workers)}
	start := time.Now()
	until := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for i := range cfg.Workers {
		s := newStats()
		res.perWorker[i] = s
		wg.Go(func() { work(ctx, pool, cfg, until, s) })
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for _, s := range res.perWorker {
		res.total.add(s)
	}
	return res
}

func work(ctx context.Context, pool *pgxpool.Pool, cfg config, until time.Time, s *stats) {
	obs := &retryCounter{bySQLState: s.retries}
	opts := txn.Options{Isolation: cfg.Isolation, Name: "bank.transfer", Observer: obs, Retry: cfg.Retry, NoRetryQueue: cfg.NoRetryQueue}
	for ctx.Err() == nil && time.Now().Before(until) {
		r := randomTransfer(cfg.Accounts)
		start := time.Now()
		err := txn.WithTx(ctx, pool, opts, func(ctx context.Context, tx pgx.Tx) error {
			s.attempts++
			return transfer(ctx, tx, r)
		})
		s.calls++
		if err == nil {
			s.commits++
			s.latencies = append(s.latencies, time.Since(start))
			s.committed = append(s.committed, r.ID)
			continue
		}
		if errors.Is(err, txn.ErrCommitUnknown) {
			s.unknown = append(s.unknown, r.ID)
		}
		kind := failureKind(err)
		s.failures[kind]++
		if _, ok := s.examples[kind]; !ok {
			s.examples[kind] = err.Error()
		}
	}
}

func randomTransfer(accounts int) transferReq {
	from := 1 + rand.IntN(accounts)
	to := 1 + rand.IntN(accounts-1)
	if to >= from {
		to++
	}
	return transferReq{ID: uuid.New(), From: from, To: to, Amount: 1 + rand.Int64N(maxAmount)}
}

// failureKind names the reason a transfer did not commit, for the report.
func failureKind(err error) string {
	switch {
	case errors.Is(err, errInsufficientFunds):
		return "declined: insufficient funds"
	case errors.Is(err, txn.ErrCommitUnknown):
		return "commit outcome unknown"
	case errors.Is(err, retry.ErrExhausted):
		return "retries exhausted (SQLSTATE " + retry.SQLState(err) + ")"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	}
	if code := retry.SQLState(err); code != "" {
		return "SQLSTATE " + code
	}
	return "other error"
}

// retryCounter is the Observer that counts the retries WithTx reports.
// WithTx calls it on the worker's goroutine; the mutex is there because
// the Observer contract asks for concurrency safety, not because this
// program needs it.
type retryCounter struct {
	mu         sync.Mutex
	bySQLState map[string]int
}

var _ txn.TxRetryObserver = (*retryCounter)(nil)

func (c *retryCounter) TxRetry(_ context.Context, d txn.TxRetryData) {
	code := d.SQLState
	if code == "" {
		code = "connection lost"
	}
	c.mu.Lock()
	c.bySQLState[code]++
	c.mu.Unlock()
}

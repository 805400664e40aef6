package cluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

// commit is one write WithTx reported committed: the id inserted, the port
// of the server that ran it, and when the report came.
type commit struct {
	id   int64
	port int
	at   time.Time
}

// writes is what concurrent writers saw: every write reported committed,
// and how many ended with ErrCommitUnknown.
type writes struct {
	mu        sync.Mutex
	committed []commit
	unknown   int
}

// startWriters starts four writers that insert fresh ids into table log
// (id bigint PRIMARY KEY) through c with policy until stop is called; stop
// also waits for them and may be called more than once. An error other
// than ErrCommitUnknown, or one caused by stop, fails the test.
func startWriters(t *testing.T, ctx context.Context, c *cluster.Cluster, policy *retry.Policy) (w *writes, stop func()) {
	t.Helper()
	w = &writes{}
	var next atomic.Int64
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for wctx.Err() == nil {
				id := next.Add(1)
				var port int
				err := txn.WithTx(wctx, c, txn.Options{Retry: policy}, func(ctx context.Context, tx pgx.Tx) error {
					return tx.QueryRow(ctx, "INSERT INTO log VALUES ($1) RETURNING current_setting('port')::int", id).Scan(&port)
				})
				w.mu.Lock()
				switch {
				case err == nil:
					w.committed = append(w.committed, commit{id: id, port: port, at: time.Now()})
				case errors.Is(err, txn.ErrCommitUnknown):
					w.unknown++
				case wctx.Err() != nil:
				default:
					t.Errorf("write %d: %v", id, err)
				}
				w.mu.Unlock()
			}
		})
	}
	return w, func() {
		cancel()
		wg.Wait()
	}
}

// count is the number of writes reported committed so far.
func (w *writes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.committed)
}

// ids are the ids of the writes reported committed so far.
func (w *writes) ids() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int64, len(w.committed))
	for i, c := range w.committed {
		out[i] = c.id
	}
	return out
}

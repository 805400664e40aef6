package locks_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
)

type job struct {
	ID      int64      `db:"id"`
	Payload string     `db:"payload"`
	DoneAt  *time.Time `db:"done_at"`
}

func jobsSchema(n int) string {
	return `CREATE TABLE jobs (id bigint PRIMARY KEY, payload text NOT NULL, done_at timestamptz);
		INSERT INTO jobs SELECT g, 'job ' || g FROM generate_series(1, ` + itoa(n) + `) g;
		CREATE TABLE processed (job_id bigint NOT NULL, worker int NOT NULL)`
}

var jobs = locks.Queue[job]{
	Table: pgx.Identifier{"jobs"},
	Key:   "id",
	Ready: "done_at IS NULL",
	Done:  locks.Done{SetNow: []string{"done_at"}},
}

// TestClaimProcessesEveryJobExactlyOnce: 8 workers drain 5000 jobs in
// batches. A few batches fail on purpose and roll back; their jobs must be
// claimed again, and in the end every job is processed by exactly one
// committed transaction.
func TestClaimProcessesEveryJobExactlyOnce(t *testing.T) {
	t.Parallel()
	const (
		total   = 5000
		workers = 8
		batch   = 25
	)
	b := setup(t, jobsSchema(total), func(c *pgxpool.Config) { c.MaxConns = workers })

	var (
		committed [total + 1]atomic.Int32 // per job: commits that processed it
		claimed   atomic.Int64            // sum of what Claim returned
		failed    sync.Map                // jobs that already failed once
		rollbacks atomic.Int64
		wg        sync.WaitGroup
		errs      = make(chan error, workers)
	)
	errInjected := errors.New("injected failure")
	for w := range workers {
		wg.Go(func() {
			for {
				n, err := jobs.Claim(b.ctx, b.pool, batch, func(ctx context.Context, tx pgx.Tx, js []job) error {
					ids := make([]int64, len(js))
					for i, j := range js {
						ids[i] = j.ID
						if j.DoneAt == nil {
							return errors.New("a claimed row must come back marked done")
						}
						// Every 1000th job fails its first time, taking its
						// batch down with it.
						if j.ID%1000 == 0 {
							if _, again := failed.LoadOrStore(j.ID, true); !again {
								return errInjected
							}
						}
					}
					if _, err := tx.Exec(ctx, "INSERT INTO processed SELECT unnest($1::bigint[]), $2", ids, w); err != nil {
						return err
					}
					txn.AfterCommit(ctx, func(context.Context) {
						for _, id := range ids {
							committed[id].Add(1)
						}
					})
					return nil
				})
				switch {
				case errors.Is(err, errInjected):
					rollbacks.Add(1)
					continue
				case err != nil:
					errs <- err
					return
				case n == 0:
					// Nothing ready or free: whatever is left is held by
					// workers still running, who finish it or roll it
					// back and claim it again.
					return
				}
				claimed.Add(int64(n))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	for id := 1; id <= total; id++ {
		require.Equal(t, int32(1), committed[id].Load(), "job %d", id)
	}
	require.Equal(t, int64(total), claimed.Load())
	require.Equal(t, int64(total/1000), rollbacks.Load())
	var rows, distinct, notDone int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*), count(DISTINCT job_id) FROM processed").Scan(&rows, &distinct))
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM jobs WHERE done_at IS NULL").Scan(&notDone))
	require.Equal(t, total, rows, "one processed row per job")
	require.Equal(t, total, distinct)
	require.Zero(t, notDone)
	t.Logf("%d jobs, %d workers, batches of %d, %d batches rolled back and claimed again", total, workers, batch, rollbacks.Load())
}

// TestClaimSkipsRowsOthersHold: a claim in progress does not block another;
// the second takes the next rows.
func TestClaimSkipsRowsOthersHold(t *testing.T) {
	t.Parallel()
	b := setup(t, jobsSchema(10))
	holding, release := make(chan []int64), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := jobs.Claim(b.ctx, b.pool, 4, func(_ context.Context, _ pgx.Tx, js []job) error {
			holding <- ids(js)
			<-release
			return nil
		})
		first <- err
	}()
	require.Equal(t, []int64{1, 2, 3, 4}, <-holding)

	var second []int64
	n, err := jobs.Claim(b.ctx, b.pool, 4, func(_ context.Context, _ pgx.Tx, js []job) error {
		second = ids(js)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, []int64{5, 6, 7, 8}, second)
	close(release)
	require.NoError(t, <-first)
}

func TestClaimRollsBackOnError(t *testing.T) {
	t.Parallel()
	b := setup(t, jobsSchema(3))
	boom := errors.New("boom")
	n, err := jobs.Claim(b.ctx, b.pool, 2, func(context.Context, pgx.Tx, []job) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Zero(t, n)

	var got []int64
	n, err = jobs.Claim(b.ctx, b.pool, 2, func(_ context.Context, _ pgx.Tx, js []job) error {
		got = ids(js)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []int64{1, 2}, got, "the rows came back")

	called := false
	n, err = jobs.Claim(b.ctx, b.pool, 5, func(_ context.Context, _ pgx.Tx, js []job) error {
		called = true
		require.Len(t, js, 1)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.True(t, called)

	n, err = jobs.Claim(b.ctx, b.pool, 5, func(context.Context, pgx.Tx, []job) error {
		t.Fatal("fn must not run when nothing was claimed")
		return nil
	})
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestClaimDeleteWithArgsAndOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, `CREATE TABLE tasks (id int PRIMARY KEY, queue text NOT NULL, priority int NOT NULL);
		INSERT INTO tasks VALUES (1, 'mail', 5), (2, 'mail', 1), (3, 'sms', 0), (4, 'mail', 1), (5, 'mail', 9)`)
	type task struct {
		ID       int
		Queue    string
		Priority int
	}
	q := locks.Queue[task]{
		Table:     pgx.Identifier{"public", "tasks"},
		Key:       "id",
		Ready:     "queue = $1",
		ReadyArgs: []any{"mail"},
		OrderBy:   []string{"priority", "id"},
		Done:      locks.Done{Delete: true},
	}
	var got []task
	n, err := q.Claim(b.ctx, b.pool, 3, func(_ context.Context, _ pgx.Tx, ts []task) error {
		got = ts
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []task{{2, "mail", 1}, {4, "mail", 1}, {1, "mail", 5}}, got, "in OrderBy order, as they were")
	var left []int
	rows, err := b.pool.Query(b.ctx, "SELECT id FROM tasks ORDER BY id")
	require.NoError(t, err)
	left, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{3, 5}, left)
}

func TestClaimWithHostileNames(t *testing.T) {
	t.Parallel()
	const table, key, state = `q"ueue; DROP TABLE victims; --`, `i"d`, `st"ate; --`
	qt, qk, qs := pgx.Identifier{table}.Sanitize(), pgx.Identifier{key}.Sanitize(), pgx.Identifier{state}.Sanitize()
	b := setup(t, `CREATE TABLE victims (id int);
		CREATE TABLE `+qt+` (`+qk+` int PRIMARY KEY, `+qs+` text NOT NULL);
		INSERT INTO `+qt+` VALUES (1, 'ready'), (2, 'ready')`)
	q := locks.Queue[[]any]{
		Table: pgx.Identifier{table},
		Key:   key,
		Ready: qs + " = $1", ReadyArgs: []any{"ready"},
		OrderBy: []string{key},
		Done:    locks.Done{Set: map[string]any{state: "done'; DROP TABLE victims; --"}},
		Scan:    func(row pgx.CollectableRow) ([]any, error) { return row.Values() },
	}
	var got [][]any
	n, err := q.Claim(b.ctx, b.pool, 10, func(_ context.Context, _ pgx.Tx, rows [][]any) error {
		got = rows
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, [][]any{{int32(1), "done'; DROP TABLE victims; --"}, {int32(2), "done'; DROP TABLE victims; --"}}, got)
	var victims bool
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT to_regclass('victims') IS NOT NULL").Scan(&victims))
	require.True(t, victims)
}

func TestClaimRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noop := func(context.Context, pgx.Tx, []job) error { return nil }
	with := func(f func(q *locks.Queue[job])) locks.Queue[job] {
		q := jobs
		f(&q)
		return q
	}
	cases := map[string]struct {
		q    locks.Queue[job]
		n    int
		want string
	}{
		"n is zero":            {jobs, 0, "n must be positive"},
		"no table":             {with(func(q *locks.Queue[job]) { q.Table = nil }), 1, "Queue.Table"},
		"no key":               {with(func(q *locks.Queue[job]) { q.Key = "" }), 1, "Queue.Key"},
		"empty order column":   {with(func(q *locks.Queue[job]) { q.OrderBy = []string{""} }), 1, "Queue.OrderBy"},
		"no done":              {with(func(q *locks.Queue[job]) { q.Done = locks.Done{} }), 1, "what makes a claimed row done"},
		"delete and set":       {with(func(q *locks.Queue[job]) { q.Done.Delete = true }), 1, "Delete and Set"},
		"set without ready":    {with(func(q *locks.Queue[job]) { q.Ready = " " }), 1, "needs a Ready condition"},
		"param past the args":  {with(func(q *locks.Queue[job]) { q.Ready = "payload = $1" }), 1, "uses $1 but ReadyArgs has 0"},
		"args without ready":   {with(func(q *locks.Queue[job]) { q.Done = locks.Done{Delete: true}; q.Ready = ""; q.ReadyArgs = []any{1} }), 1, "ReadyArgs without"},
		"two statements":       {with(func(q *locks.Queue[job]) { q.Ready = "true; DELETE FROM jobs" }), 1, "not statements"},
		"unbalanced":           {with(func(q *locks.Queue[job]) { q.Ready = "true) OR (true" }), 1, "unbalanced"},
		"locking clause":       {with(func(q *locks.Queue[job]) { q.Ready = "id IN (SELECT id FROM jobs FOR UPDATE)" }), 1, "not a locking clause"},
		"key changed":          {with(func(q *locks.Queue[job]) { q.Done.Set = map[string]any{"id": 0} }), 1, "key column"},
		"column set twice":     {with(func(q *locks.Queue[job]) { q.Done.Set = map[string]any{"done_at": nil} }), 1, "set twice"},
		"bad column in SetNow": {with(func(q *locks.Queue[job]) { q.Done.SetNow = []string{"a\x00"} }), 1, "NUL"},
	}
	for name, c := range cases {
		_, err := c.q.Claim(ctx, nil, c.n, noop)
		require.ErrorIs(t, err, locks.ErrInvalid, name)
		require.Contains(t, err.Error(), c.want, name)
	}
	_, err := jobs.Claim(ctx, nil, 1, nil)
	require.ErrorIs(t, err, locks.ErrInvalid)
}

func ids(js []job) []int64 {
	out := make([]int64, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestClaimInCtxTransactionRunsInASavepoint: Claim with the ctx of a
// txn.WithTx joins that transaction in a savepoint. fn's failure rolls
// back only the savepoint, so the outer transaction goes on; a claim that
// succeeded commits or rolls back with the outer transaction, and when
// that rolls back the rows are ready again.
func TestClaimInCtxTransactionRunsInASavepoint(t *testing.T) {
	t.Parallel()
	b := setup(t, jobsSchema(5))
	errFn := errors.New("fn failed")
	errOuter := errors.New("outer rolls back")
	ready := func(q txn.Querier) int {
		var n int
		require.NoError(t, q.QueryRow(b.ctx, "SELECT count(*) FROM jobs WHERE done_at IS NULL").Scan(&n))
		return n
	}

	err := txn.WithTx(b.ctx, b.pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		outer := pid(tx)
		n, err := jobs.Claim(ctx, b.pool, 2, func(ctx context.Context, inner pgx.Tx, js []job) error {
			require.Equal(t, outer, pid(inner), "the claim runs on the outer transaction's connection")
			return errFn
		})
		require.ErrorIs(t, err, errFn)
		require.Zero(t, n, "nothing was done")
		require.Equal(t, 5, ready(tx), "fn failed: back to the savepoint, the rows are not done")

		n, err = jobs.Claim(ctx, b.pool, 2, func(ctx context.Context, _ pgx.Tx, js []job) error {
			require.Equal(t, []int64{1, 2}, []int64{js[0].ID, js[1].ID})
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		require.Equal(t, 3, ready(tx), "the outer transaction sees the claim")
		require.Equal(t, 5, ready(b.pool), "nobody else does before the outer commit")
		return errOuter
	})
	require.ErrorIs(t, err, errOuter)
	require.Equal(t, 5, ready(b.pool), "the outer transaction rolled back: every row is ready again")

	n, err := jobs.Claim(b.ctx, b.pool, 10, func(context.Context, pgx.Tx, []job) error { return nil })
	require.NoError(t, err)
	require.Equal(t, 5, n, "the rows the rolled-back claim had are claimed again")
}

// TestClaimFnPanicLeavesTheRowsReady: a panic in fn rolls the claim back
// and goes on up to the caller; after recovering, the same rows are ready
// and are claimed again.
func TestClaimFnPanicLeavesTheRowsReady(t *testing.T) {
	t.Parallel()
	b := setup(t, jobsSchema(5))

	func() {
		defer func() {
			require.Equal(t, "worker panicked", recover())
		}()
		_, _ = jobs.Claim(b.ctx, b.pool, 3, func(context.Context, pgx.Tx, []job) error {
			panic("worker panicked")
		})
		t.Fatal("Claim returned instead of panicking")
	}()

	var notDone int
	require.NoError(t, b.pool.QueryRow(b.ctx, "SELECT count(*) FROM jobs WHERE done_at IS NULL").Scan(&notDone))
	require.Equal(t, 5, notDone, "the claim rolled back")
	var ids []int64
	n, err := jobs.Claim(b.ctx, b.pool, 3, func(_ context.Context, _ pgx.Tx, js []job) error {
		for _, j := range js {
			ids = append(ids, j.ID)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, []int64{1, 2, 3}, ids, "the rows fn panicked on are claimed again")
}

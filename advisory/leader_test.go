package advisory_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/pgtest"
)

// election is a set of contenders, each with a pool of its own as if it
// were a process of its own, leading a job that ticks into the database.
type election struct {
	b       *bundle
	dsn     string
	started chan leadership // a contender became leader
	ended   chan leadership // a leader's fn returned
}

type leadership struct {
	contender int
	term      int64
	cause     error // why fn's ctx ended
}

const tickSchema = `
CREATE TABLE leader (id int PRIMARY KEY, term bigint NOT NULL);
INSERT INTO leader VALUES (1, 0);
CREATE TABLE ticks (id bigserial PRIMARY KEY, term bigint NOT NULL, contender int NOT NULL)`

// tickSQL is a leader's fenced write: it records a tick only if no leader
// with a later term has written, and takes the leader row's lock, so the
// ticks' ids follow the order in which the writes committed.
const tickSQL = `WITH f AS (UPDATE leader SET term = $1 WHERE id = 1 AND term <= $1 RETURNING term)
INSERT INTO ticks (term, contender) SELECT $1, $2 FROM f`

func newElection(t *testing.T) *election {
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	e := &election{dsn: dsn, started: make(chan leadership, 64), ended: make(chan leadership, 64)}
	e.b = &bundle{ctx: ctx, pool: e.pool(t)}
	_, err := e.b.pool.Exec(ctx, tickSchema)
	require.NoError(t, err)
	return e
}

func (e *election) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), e.dsn)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.Equal(t, int32(0), p.Stat().AcquiredConns(), "a contender's pool still has connections out")
		p.Close()
	})
	return p
}

// run starts n contenders that lead until ctx ends; the returned func
// waits for all of them and checks they stopped cleanly.
func (e *election) run(t *testing.T, ctx context.Context, n int) (wait func()) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		pool := e.pool(t)
		wg.Go(func() {
			errs <- advisory.Lead(ctx, pool, "scheduler", advisory.Options{CheckInterval: 50 * time.Millisecond}, func(ctx context.Context, term int64) error {
				e.started <- leadership{contender: i, term: term}
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						e.ended <- leadership{contender: i, term: term, cause: context.Cause(ctx)}
						return ctx.Err()
					case <-tick.C:
					}
					// A write is not cut short by the end of leadership:
					// pgx would close the connection, and the pool
					// destroys it in the background, after the test's
					// check that no connection is out. A stale leader's
					// write is refused by the fence instead.
					wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
					_, err := pool.Exec(wctx, tickSQL, term, i)
					wcancel()
					if err != nil {
						return err
					}
				}
			})
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() { e.waitAll(t, &wg, errs) })
	}
}

func (e *election) waitAll(t *testing.T, wg *sync.WaitGroup, errs chan error) {
	{
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err, "Lead returns nil when its ctx ends")
		}
	}
}

// next waits for an event on c; the bound turns a hang into a failure.
func next(t *testing.T, c <-chan leadership, what string) leadership {
	t.Helper()
	select {
	case l := <-c:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	panic("unreachable")
}

// checkTicks asserts the database's view: in commit order, terms never
// go back, and each term belongs to one contender. Two leaders at once
// would interleave their terms.
func (e *election) checkTicks(t *testing.T) (terms int) {
	rows, err := e.b.pool.Query(e.b.ctx, "SELECT term, contender FROM ticks ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	owner := map[int64]int{}
	var last int64
	n := 0
	for rows.Next() {
		var term int64
		var c int
		require.NoError(t, rows.Scan(&term, &c))
		require.GreaterOrEqual(t, term, last, "tick %d: term %d after term %d: two leaders overlapped", n, term, last)
		if o, ok := owner[term]; ok {
			require.Equal(t, o, c, "term %d written by two contenders", term)
		}
		owner[term] = c
		last = term
		n++
	}
	require.NoError(t, rows.Err())
	require.Positive(t, n)
	return len(owner)
}

// TestLeaderFailover: three contenders; the leader's connection is killed
// twice; each time another leader, with a larger term, takes over within
// a bound, and the old leader's fn sees ErrLockLost.
func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	e := newElection(t)
	ctx, cancel := context.WithCancel(e.b.ctx)
	wait := e.run(t, ctx, 3)
	defer func() { cancel(); wait() }()

	cur := next(t, e.started, "leader")
	for range 2 {
		pid := e.b.holder(t, "scheduler")
		e.b.terminate(t, pid)
		killed := time.Now()
		nl := next(t, e.started, "new leader")
		t.Logf("term %d (contender %d) killed; term %d (contender %d) leads after %v",
			cur.term, cur.contender, nl.term, nl.contender, time.Since(killed).Round(time.Millisecond))
		require.Greater(t, nl.term, cur.term)
		old := next(t, e.ended, "end of the old leadership")
		require.Equal(t, leadership{contender: cur.contender, term: cur.term}, leadership{contender: old.contender, term: old.term})
		require.ErrorIs(t, old.cause, advisory.ErrLockLost, "the old leader's fn was told why it stopped")
		cur = nl
	}
	cancel()
	wait()
	e.checkTicks(t)
}

// TestLeaderFailoverTermsNeverOverlap kills the leader repeatedly while
// the leaders tick as fast as they can, and checks the database never saw
// two leaders at once.
func TestLeaderFailoverTermsNeverOverlap(t *testing.T) {
	t.Parallel()
	e := newElection(t)
	ctx, cancel := context.WithCancel(e.b.ctx)
	wait := e.run(t, ctx, 4)
	defer func() { cancel(); wait() }()

	cur := next(t, e.started, "leader")
	for range 5 {
		e.b.terminate(t, e.b.holder(t, "scheduler"))
		nl := next(t, e.started, "new leader")
		require.Greater(t, nl.term, cur.term)
		cur = nl
	}
	cancel()
	wait()
	terms := e.checkTicks(t)
	require.GreaterOrEqual(t, terms, 2, "ticks from several terms were checked")
}

func TestLeadReturnsWhenFnReturns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got int64
	err := advisory.Lead(b.ctx, b.pool, "once", advisory.Options{}, func(ctx context.Context, term int64) error {
		got = term
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(1), got)
	err = advisory.Lead(b.ctx, b.pool, "once", advisory.Options{}, func(ctx context.Context, term int64) error {
		return fmt.Errorf("term %d: %w", term, errSentinel)
	})
	require.ErrorIs(t, err, errSentinel)
	require.ErrorContains(t, err, "term 2")
	require.Empty(t, b.locks(t))
}

// TestLeadRetriesAnUnreachableServer: a server that refuses connections
// is a failure that may pass, so Lead campaigns again, with backoff (not
// in a busy loop), until ctx ends, and then returns nil.
func TestLeadRetriesAnUnreachableServer(t *testing.T) {
	t.Parallel()
	// A local port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg, err := pgxpool.ParseConfig("postgres://postgres@" + addr + "/postgres?sslmode=disable&connect_timeout=5")
	require.NoError(t, err)
	var dials atomic.Int64
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = advisory.Lead(ctx, pool, "unreachable", advisory.Options{}, func(context.Context, int64) error {
		t.Error("fn ran without a server")
		return nil
	})
	require.NoError(t, err, "ctx ended: Lead's normal stop")
	require.Error(t, ctx.Err())
	// Lead's backoff starts at 100ms and grows: about six campaigns fit in
	// a second. A busy loop would make thousands.
	n := dials.Load()
	require.GreaterOrEqual(t, n, int64(2), "campaigned again after the first failure")
	require.Less(t, n, int64(20), "campaigns are spaced by backoff")
}

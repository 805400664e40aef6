package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

// An empty DSN would make pgx connect to whatever the environment and its
// defaults name; it is refused.
func TestOpenRefusesAnEmptyDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"", "  \t\n"} {
		_, err := pool.Open(context.Background(), dsn, pool.Options{Lazy: true})
		require.ErrorIs(t, err, pool.ErrInvalid, "%q", dsn)
		assert.Contains(t, err.Error(), "empty")
	}
}

// A ctx that is already done fails Open, lazy or not, with ctx's error;
// one that ends during the connect ends Open then.
func TestOpenWithADoneCtx(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, lazy := range []bool{false, true} {
		p, err := pool.Open(ctx, dsn, local(pool.Options{Lazy: lazy}))
		require.ErrorIs(t, err, context.Canceled, "lazy=%v", lazy)
		assert.Nil(t, p)
	}

	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := pool.Open(short, "postgres://app@"+silentServer(t)+"/orders?sslmode=disable", pool.Options{ConnectTimeout: time.Hour})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), generous, "Open must end with its ctx")
}

// Negative values that mean nothing are refused; those documented as
// "off" are accepted and reported as off.
func TestOpenNegativeOptions(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]pool.Options{
		"MaxConns":       {MaxConns: -1},
		"Instances":      {Instances: -2},
		"Workers":        {Workers: -1, ConnsPerWorker: 2},
		"ConnsPerWorker": {Workers: 4, ConnsPerWorker: -1},
		"ConnectTimeout": {ConnectTimeout: -time.Second},
		"LockTimeout":    {LockTimeout: -time.Second},
		"IdlePing":       {IdlePing: 30}, // 30 ns: a lost unit, a ping loop
	} {
		_, err := pool.Open(context.Background(), "postgres://127.0.0.1/x", o)
		require.ErrorIs(t, err, pool.ErrInvalid, name)
		assert.Contains(t, err.Error(), name)
	}
	lazy, err := pool.Open(context.Background(), "postgres://127.0.0.1/x", pool.Options{IdlePing: pool.MinIdlePing, Lazy: true})
	require.NoError(t, err, "MinIdlePing itself is accepted")
	require.NoError(t, lazy.Close(context.Background()))
	p, _ := open(t, pool.Options{AcquireTimeout: -1, LeakThreshold: -1, KeepAlive: -1, IdlePing: -1, MaxConnecting: -1, IdleInTransactionTimeout: -1})
	assert.Zero(t, p.Config().AcquireTimeout)
	assert.Zero(t, p.Config().LeakThreshold)
	require.NoError(t, p.Ping(context.Background()))
}

// An acquire timeout as long as a Duration goes (a way to say "forever")
// is a very long timeout, not an overflow that fails every acquire.
func TestHugeAcquireTimeout(t *testing.T) {
	t.Parallel()
	p, _ := open(t, pool.Options{AcquireTimeout: time.Duration(1<<63 - 1), MaxConns: 1})
	ctx := context.Background()
	held, err := p.Acquire(ctx)
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		c, err := p.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the watchdog scan the waiter a few times
	held.Release()
	require.NoError(t, <-got)
}

func TestCloseTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := pool.Open(ctx, pgtest.NewDatabase(t), local(pool.Options{}))
	require.NoError(t, err)
	held, err := p.Acquire(ctx)
	require.NoError(t, err)

	first := make(chan error, 1)
	go func() { first <- p.Close(ctx) }()
	// Once acquires fail, the first Close is waiting for the held one.
	require.Eventually(t, func() bool {
		c, err := p.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		return errors.Is(err, pool.ErrClosed)
	}, generous, time.Millisecond)

	// A second Close with a shorter deadline does not wait past it.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = p.Close(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "under way")

	// Concurrent calls all get the first call's result.
	held.Release()
	require.NoError(t, <-first)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { assert.NoError(t, p.Close(ctx)) })
	}
	wg.Wait()

	var nilPool *pool.Pool
	assert.NoError(t, nilPool.Close(ctx))
}

// An acquire still waiting for a connection when Close gives up on a
// leaked one fails with ErrClosed, with or without an acquire timeout,
// instead of waiting for the leaker.
func TestCloseEndsAcquiresStillWaiting(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{-1, time.Hour} {
		t.Run(fmt.Sprint(timeout), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p, err := pool.Open(ctx, pgtest.NewDatabase(t), local(pool.Options{MaxConns: 1, AcquireTimeout: timeout}))
			require.NoError(t, err)
			leaked, err := p.Acquire(ctx)
			require.NoError(t, err)
			defer leaked.Release()
			waiter := make(chan error, 1)
			go func() {
				c, err := p.Acquire(ctx)
				if err == nil {
					c.Release()
				}
				waiter <- err
			}()
			time.Sleep(50 * time.Millisecond) // most likely waiting by now; ErrClosed either way

			closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			require.ErrorIs(t, p.Close(closeCtx), pool.ErrStillHeld)
			select {
			case err := <-waiter:
				require.ErrorIs(t, err, pool.ErrClosed)
			case <-time.After(generous):
				t.Fatal("the waiting acquire outlived Close")
			}
		})
	}
}

// Acquires racing Close either get a connection (and Close waits for its
// release) or fail with ErrClosed; never pgxpool's own closed-pool error.
func TestCloseRacingAcquires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for round := range 5 {
		p, err := pool.Open(ctx, pgtest.NewDatabase(t), local(pool.Options{MaxConns: 2}))
		require.NoError(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var uses int
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				for {
					var one int
					err := p.QueryRow(ctx, "SELECT 1").Scan(&one)
					if err != nil {
						errs[i] = err
						return
					}
					mu.Lock()
					uses++
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		closeCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		require.NoError(t, p.Close(closeCtx), "round %d", round)
		cancel()
		wg.Wait()
		for _, err := range errs {
			require.ErrorIs(t, err, pool.ErrClosed, "round %d", round)
		}
	}
}

// A password with every character a DSN treats specially works in both
// DSN forms and in ?password=, and shows nowhere.
func TestPasswordWithSpecialCharacters(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	const pw = `p@ss:w/rd?#&=+ 'q"\%20é`
	admin, err := pgx.Connect(ctx, s.cluster.URL())
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE ROLE odd LOGIN PASSWORD '"+strings.ReplaceAll(pw, "'", "''")+"'")
	require.NoError(t, admin.Close(ctx))
	require.NoError(t, err)

	u := &url.URL{Scheme: "postgres", User: url.UserPassword("odd", pw), Host: fmt.Sprintf("127.0.0.1:%d", s.cluster.Port()), Path: "/postgres", RawQuery: "sslmode=disable"}
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	l := &logs{}
	for name, dsn := range map[string]string{
		"url":           u.String(),
		"url ?password": fmt.Sprintf("postgres://odd@127.0.0.1:%d/postgres?sslmode=disable&password=%s", s.cluster.Port(), url.QueryEscape(pw)),
		"keyword/value": fmt.Sprintf("host=127.0.0.1 port=%d user=odd dbname=postgres sslmode=disable password='%s'", s.cluster.Port(), q.Replace(pw)),
	} {
		p, err := pool.Open(ctx, dsn, pool.Options{Logger: l.logger()})
		require.NoError(t, err, name)
		require.NoError(t, p.Ping(ctx), name)
		var user string
		require.NoError(t, p.QueryRow(ctx, "SELECT current_user").Scan(&user))
		assert.Equal(t, "odd", user, name)
		shown := fmt.Sprintf("%v %+v %s %s", p.Config(), p.Config(), p.Pgx().Config().ConnString(), pool.Redact(dsn))
		assert.NotContains(t, shown, "p@ss", name)
		require.NoError(t, p.Close(ctx))
	}
	// Unescaped, the URL does not parse; the error does not show it.
	_, err = pool.Open(ctx, fmt.Sprintf("postgres://odd:%s@127.0.0.1:%d/postgres", pw, s.cluster.Port()), pool.Options{})
	require.ErrorIs(t, err, pool.ErrInvalid)
	assert.NotContains(t, err.Error(), "p@ss")
	assert.NotContains(t, err.Error(), "w/rd")
	assert.NotContains(t, l.String(), "p@ss")
}

package txotel_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"

	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

func TestPoolSemconvMetrics(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	pm, err := tel.obs.Pool(txotel.PoolOptions{Name: "main", Namespace: "app"})
	require.NoError(t, err)
	ctx := t.Context()
	p, err := pool.Open(ctx, pgtest.NewDatabase(t), pool.Options{MaxConns: 1, AcquireTimeout: 100 * time.Millisecond, Tracer: pm})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	reg, err := pm.Observe(p.Pgx())
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })

	base := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL, semconv.DBClientConnectionPoolName("main"), semconv.DBNamespace("app")}
	key := attrs(base...)
	waits := func() float64 { return sums(tel.collect(t)["db.client.connection.wait_time"])[key+"#count"] }
	before := waits()

	held, err := p.Acquire(ctx)
	require.NoError(t, err)
	released := false
	defer func() {
		if !released {
			held.Release()
		}
	}()
	// The pool is full: this one waits out the acquire timeout.
	_, err = p.Acquire(ctx)
	require.ErrorIs(t, err, pool.ErrPoolTimeout)

	// A waiter shows in pending_requests until the connection comes back.
	got := make(chan error, 1)
	go func() {
		c, err := p.Pgx().Acquire(context.WithoutCancel(ctx))
		if err == nil {
			c.Release()
		}
		got <- err
	}()
	pending := func() float64 { return sums(tel.collect(t)["db.client.connection.pending_requests"])[key] }
	deadline := time.Now().Add(pgtest.SetupTimeout)
	for pending() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, 1, int(pending()))
	m := tel.collect(t)
	require.Equal(t, map[string]float64{
		attrs(append(slices.Clone(base), semconv.DBClientConnectionStateIdle)...): 0,
		attrs(append(slices.Clone(base), semconv.DBClientConnectionStateUsed)...): 1,
	}, sums(m["db.client.connection.count"]))
	held.Release()
	released = true
	require.NoError(t, <-got)

	m = tel.collect(t)
	require.Equal(t, 0, int(sums(m["db.client.connection.pending_requests"])[key]))
	require.Equal(t, 1, int(sums(m["db.client.connection.timeouts"])[key]))
	require.Equal(t, 3, int(sums(m["db.client.connection.wait_time"])[key+"#count"]-before), "three acquires, the timed-out one included")
	require.Equal(t, map[string]float64{key: 1}, sums(m["db.client.connection.max"]))
	require.Equal(t, map[string]float64{key: 0}, sums(m["db.client.connection.idle.min"]))
	require.GreaterOrEqual(t, sums(m["db.client.connection.use_time"])[key+"#count"], 2.0)
	require.GreaterOrEqual(t, sums(m["db.client.connection.create_time"])[key+"#count"], 1.0)
	require.Equal(t, 1, int(sums(m["db.client.connection.count"])[attrs(append(slices.Clone(base), semconv.DBClientConnectionStateIdle)...)]))
}

// The tracer works on a plain pgxpool too.
func TestPoolMetricsOnPgxpool(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	pm, err := tel.obs.Pool(txotel.PoolOptions{})
	require.NoError(t, err)
	db := pgtest.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.Tracer = pm })
	for range 5 {
		_, err := db.Exec(t.Context(), "SELECT 1")
		require.NoError(t, err)
	}
	key := attrs(semconv.DBSystemNamePostgreSQL, semconv.DBClientConnectionPoolName("default"))
	m := tel.collect(t)
	require.Equal(t, 5, int(sums(m["db.client.connection.wait_time"])[key+"#count"]))
	require.Equal(t, 5, int(sums(m["db.client.connection.use_time"])[key+"#count"]))
}

// A row lock that cannot be had (NOWAIT here; lock_timeout alike) is
// counted in txkit.locks.not_available, and other errors are not.
func TestRowLockNotAvailableIsCounted(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	pm, err := tel.obs.Pool(txotel.PoolOptions{Name: "rows"})
	require.NoError(t, err)
	b := pgtest.Setup(t, pgtest.Schema(schema), pgtest.Configure(func(c *pgxpool.Config) { c.ConnConfig.Tracer = pm }))
	holder, err := b.Pool.Begin(b.Ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.WithoutCancel(b.Ctx)) }()
	_, err = holder.Exec(b.Ctx, "SELECT 1 FROM t WHERE id = 1 FOR UPDATE")
	require.NoError(t, err)
	err = txn.WithTx(b.Ctx, b.Pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		_, err := locks.ByKey(ctx, tx, pgx.Identifier{"t"}, "id", []int{1}, locks.Options{Wait: locks.NoWait})
		return err
	})
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
	// A wait bounded by a lock_timeout of its own, which locks sends in a
	// batch with the read, is counted as well.
	err = txn.WithTx(b.Ctx, b.Pool, txn.Options{Retry: retry.Never()}, func(ctx context.Context, tx pgx.Tx) error {
		var id int
		return locks.QueryRow(ctx, tx, locks.Options{LockTimeout: 10 * time.Millisecond}, "SELECT id FROM t WHERE id = $1", 1).Scan(&id)
	})
	require.ErrorIs(t, err, locks.ErrLockNotAvailable)
	_, err = b.Pool.Exec(b.Ctx, "SELECT 1/0")
	require.Error(t, err)
	key := attrs(semconv.DBSystemNamePostgreSQL, semconv.DBClientConnectionPoolName("rows"))
	require.Equal(t, map[string]float64{key: 2}, sums(tel.collect(t)["txkit.locks.not_available"]))
}

package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/pgtest"
)

// BenchmarkAcquireRelease measures what the acquire timeout and the leak
// bookkeeping add to an acquire+release of an idle connection, beside raw
// pgxpool in the same run. No query is sent: this is the pool's own cost.
//
//	go test -run '^$' -bench AcquireRelease -benchmem ./pool
func BenchmarkAcquireRelease(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	ctx := context.Background()
	run := func(b *testing.B, acquire func(context.Context) (*pgxpool.Conn, error)) {
		b.Helper()
		c, err := acquire(ctx) // open the connection outside the timing
		require.NoError(b, err)
		c.Release()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			c, err := acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			c.Release()
		}
	}
	b.Run("pgxpool", func(b *testing.B) {
		p, err := pgxpool.New(ctx, dsn)
		require.NoError(b, err)
		defer p.Close()
		run(b, p.Acquire)
	})
	for _, c := range []struct {
		name string
		opts pool.Options
	}{
		{"pool", pool.Options{}},
		{"pool+stacks", pool.Options{CaptureStacks: true}},
		{"pool,no-timeout,no-leaks", pool.Options{AcquireTimeout: -1, LeakThreshold: -1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := pool.Open(ctx, dsn, local(c.opts))
			require.NoError(b, err)
			defer func() { require.NoError(b, p.Close(ctx)) }()
			run(b, p.Acquire)
		})
	}
	// A request's ctx can be cancelled, so the acquire watches it too.
	b.Run("pool,cancellable-ctx", func(b *testing.B) {
		p, err := pool.Open(ctx, dsn, local(pool.Options{}))
		require.NoError(b, err)
		defer func() { require.NoError(b, p.Close(ctx)) }()
		req, cancel := context.WithCancel(ctx)
		defer cancel()
		run(b, func(context.Context) (*pgxpool.Conn, error) { return p.Acquire(req) })
	})
}

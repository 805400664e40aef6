package advisory_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/tests/fakepg"
)

func TestRefusesCockroachDB(t *testing.T) {
	t.Parallel()
	// A server that greets clients the way CockroachDB does: a refusal
	// must come before any lock statement reaches it.
	f, err := fakepg.Start(map[string]string{"server_version": "13.0.0", "crdb_version": "CockroachDB CCL v24.1.0 (fake)"}, nil)
	require.NoError(t, err)
	defer f.Close()
	pool, err := pgxpool.New(t.Context(), f.URL())
	require.NoError(t, err)
	defer pool.Close()
	ctx := t.Context()

	_, err = advisory.Acquire(ctx, pool, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrUnsupportedServer)
	require.ErrorContains(t, err, "CockroachDB")
	_, err = advisory.TryAcquire(ctx, pool, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrUnsupportedServer)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, advisory.LockTx(ctx, tx, "x", advisory.Options{}), advisory.ErrUnsupportedServer)
	_, err = advisory.TryLockTx(ctx, tx, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrUnsupportedServer)
	require.NoError(t, tx.Rollback(ctx))

	require.ErrorIs(t, advisory.Lead(ctx, pool, "x", advisory.Options{}, func(context.Context, int64) error { return nil }), advisory.ErrUnsupportedServer)
	require.Equal(t, int32(0), pool.Stat().AcquiredConns())

	for _, q := range f.Seen() {
		require.NotContains(t, q, "advisory", "no lock statement reached the server")
	}
}

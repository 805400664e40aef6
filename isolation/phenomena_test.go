package isolation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/pgtest"
)

// TestPhenomena runs every scenario in scenarios_test.go at every level the
// server distinguishes and checks that what the server did is what
// Level.Prevents says: the table in the package documentation, cell by cell.
func TestPhenomena(t *testing.T) {
	t.Parallel()
	levels := []isolation.Level{isolation.ReadCommitted, isolation.RepeatableRead, isolation.Serializable}
	for _, p := range isolation.Phenomena() {
		sc, ok := scenarios[p]
		if !ok {
			t.Errorf("no scenario shows %v", p)
			continue
		}
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			for _, level := range levels {
				t.Run(level.String(), func(t *testing.T) {
					t.Parallel()
					prevented := observe(t, level, sc)
					require.Equal(t, level.Prevents(p), prevented,
						"%v at %v: Prevents says %v, the server says %v", p, level, level.Prevents(p), prevented)
				})
			}
		})
	}
}

// observe runs sc on a fresh database at level and reports whether the
// phenomenon was prevented: either its effect did not show, or the server
// refused one of the transactions with a serialization failure.
func observe(t *testing.T, level isolation.Level, sc scenario) (prevented bool) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, sc.schema)
	require.NoError(t, err)

	s := &script{ctx: ctx}
	occurred := sc.run(s, pool, begin(ctx, t, pool, level, "T1"), begin(ctx, t, pool, level, "T2"))
	if isSerializationFailure(s.err) {
		t.Logf("refused: %v", s.err)
		return true
	}
	require.NoError(t, s.err)
	return !occurred
}

// begin starts a transaction at level and checks the server really runs
// it there, so that a wrong pgx mapping cannot make the table look true.
func begin(ctx context.Context, t *testing.T, pool *pgxpool.Pool, level isolation.Level, name string) *tx {
	t.Helper()
	ptx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: level.TxIsoLevel()})
	require.NoError(t, err)
	// Registered after NewPool's cleanup, so it runs first and the pool
	// sees every connection back. A no-op for a transaction that ended.
	t.Cleanup(func() { _ = ptx.Rollback(context.WithoutCancel(ctx)) })

	// SHOW takes no snapshot, so it does not move the point from which a
	// REPEATABLE READ or SERIALIZABLE transaction sees the data.
	var got string
	require.NoError(t, ptx.QueryRow(ctx, "SHOW transaction_isolation").Scan(&got))
	require.Equal(t, strings.ToLower(level.String()), got)
	return &tx{name: name, Tx: ptx}
}

func isSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrcode.SerializationFailure
}

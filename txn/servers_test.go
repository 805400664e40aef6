package txn_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/fakepg"
	"github.com/txkit/txkit/txn"
)

// Servers that speak PostgreSQL's protocol without its transaction ids
// (CockroachDB, YugabyteDB) and PostgreSQL before 13 cannot be asked what
// became of a lost COMMIT. On them WithTx sends COMMIT alone, as pgx does:
// no fast-path call, no xid query. Its retries work as on PostgreSQL, and
// a lost COMMIT answer is ErrCommitUnknown, saying which server it was.
func TestWithTxOnServersWithoutCommitResolution(t *testing.T) {
	t.Parallel()
	for name, params := range map[string]map[string]string{
		"CockroachDB":   {"server_version": "13.0.0", "crdb_version": "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu)"},
		"YugabyteDB":    {"server_version": "11.2-YB-2.20.1.0-b0"},
		"PostgreSQL 12": {"server_version": "12.17"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var failUpdates, hangUpAtCommit atomic.Int32
			srv, err := fakepg.Start(params, func(stmt string) fakepg.Reply {
				switch {
				case strings.HasPrefix(stmt, "UPDATE") && failUpdates.Add(-1) >= 0:
					return fakepg.Reply{Code: "40001"}
				case strings.HasPrefix(stmt, "UPDATE"):
					return fakepg.Reply{Tag: "UPDATE 1"}
				case strings.EqualFold(stmt, "commit") && hangUpAtCommit.Add(-1) >= 0:
					return fakepg.Reply{Hangup: true}
				}
				return fakepg.Reply{}
			})
			require.NoError(t, err)
			t.Cleanup(srv.Close)
			pool, err := pgxpool.New(context.Background(), srv.URL())
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			ctx := context.Background()

			attempts := 0
			fn := func(ctx context.Context, tx pgx.Tx) error {
				attempts++
				_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - 1")
				return err
			}
			opts := txn.Options{Retry: fastRetry(3)}

			failUpdates.Store(1)
			require.NoError(t, txn.WithTx(ctx, pool, opts, fn))
			require.Equal(t, 2, attempts, "a serialization failure is retried from BEGIN")
			for _, m := range srv.Seen() {
				require.False(t, strings.HasPrefix(m, "F ") || strings.HasPrefix(m, "P "),
					"only simple queries are sent; got %q", m)
			}
			require.Contains(t, srv.Seen(), "Q commit")

			attempts = 0
			hangUpAtCommit.Store(1)
			err = txn.WithTx(ctx, pool, opts, fn)
			require.ErrorIs(t, err, txn.ErrCommitUnknown)
			require.Equal(t, 1, attempts, "an unknown outcome is not run again")
			var unknown *txn.CommitUnknownError
			require.ErrorAs(t, err, &unknown)
			require.Zero(t, unknown.XID)
			require.Contains(t, err.Error(), strings.Fields(name)[0])
			require.NotErrorIs(t, err, retry.ErrExhausted)
		})
	}
}

package txn_test

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

const (
	retryMsg    = "txn: retrying transaction"
	resolvedMsg = "txn: COMMIT answer lost; outcome asked of the server"
	leakMsg     = "txn: transaction open too long"
)

// The slog observer writes exactly one line per retry, per lost COMMIT
// resolved, and per leak, none of them with the password of the
// connection string or the value of a statement argument, though every
// attempt sends that value.
func TestSlogObserverOneLinePerRetryResolutionAndLeak(t *testing.T) {
	t.Parallel()
	const (
		password = "pw-0f-the-dsn-n3ver-logged"
		secret   = "arg-v4lue-n3ver-logged"
	)
	u, err := url.Parse(pgtest.NewDatabase(t))
	require.NoError(t, err)
	u.User = url.UserPassword(u.User.Username(), password) // trust auth: accepted, unused
	pool, proxy := proxiedPoolOn(t, u.String())
	ctx := t.Context()
	_, err = pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)")
	require.NoError(t, err)

	var buf logtest.Buffer
	leaked := make(chan struct{}, 1)
	h := logtest.Signal{Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		Msg: leakMsg, Ch: leaked}
	obs := txn.NewSlogObserver(slog.New(h))

	// Three retries, each attempt sending the argument.
	calls := 0
	require.NoError(t, txn.WithTx(ctx, pool, txn.Options{Name: "retried", Observer: obs, Retry: fastRetry(5)},
		func(ctx context.Context, tx pgx.Tx) error {
			calls++
			if _, err := tx.Exec(ctx, "INSERT INTO items (id, n) VALUES (1, length($1::text))", secret); err != nil {
				return err
			}
			if calls <= 3 {
				_, err := tx.Exec(ctx, raise(pgerrcode.SerializationFailure))
				return err
			}
			return nil
		}))
	// One COMMIT whose answer is lost after the transaction id came back.
	proxy.ArmCommitFault(faultproxy.CutAfterXID)
	require.NoError(t, txn.WithTx(ctx, pool, txn.Options{Name: "lost", Observer: obs, Retry: fastRetry(3)},
		func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO items (id, n) VALUES (2, length($1::text))", secret)
			return err
		}))
	// One transaction held past its LeakThreshold.
	require.NoError(t, txn.WithTx(ctx, pool, txn.Options{Name: "slow", Observer: obs, LeakThreshold: time.Millisecond},
		func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO items (id, n) VALUES (3, length($1::text))", secret); err != nil {
				return err
			}
			select {
			case <-leaked:
			case <-time.After(time.Minute):
				t.Error("no leak line")
			}
			return nil
		}))

	out := buf.String()
	recs, err := logtest.Records(out)
	require.NoError(t, err)
	counts := map[string]int{}
	for _, rec := range recs {
		counts[rec["msg"].(string)]++
		if rec["msg"] == retryMsg {
			require.Equal(t, "retried", rec["name"])
			require.Equal(t, "40001", rec["sqlstate"])
		}
	}
	require.Equal(t, 3, counts[retryMsg], out)
	require.Equal(t, 1, counts[resolvedMsg], out)
	require.Equal(t, 1, counts[leakMsg], out)
	require.NotContains(t, out, password)
	require.NotContains(t, out, secret)
	require.NotContains(t, out, "postgres://")
}

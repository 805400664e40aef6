package txn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/faultproxy"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// signalHandler is a slog handler that tells the test when a record with
// message msg was written.
type signalHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h signalHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Message == h.msg {
		h.ch <- struct{}{}
	}
	return err
}

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

	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	leaked := make(chan struct{}, 1)
	h := signalHandler{Handler: slog.NewJSONHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}),
		msg: leakMsg, ch: leaked}
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

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	counts := map[string]int{}
	for line := range strings.Lines(out) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "one structured record per line: %q", line)
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

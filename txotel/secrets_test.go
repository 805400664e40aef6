package txotel_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/locks"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// No statement argument, error text, SQL or connection string reaches an
// attribute, a span status or an event: a workload full of a marked value
// is run, and every attribute is searched for it.
func TestNoSecretOrArgumentInAnyAttribute(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-4rg"
	b := pgtest.Setup(t, pgtest.Schema(schema))
	tel := newTelemetry(t)
	ctx := b.Ctx
	opts := txn.Options{Retry: &retry.Policy{MaxAttempts: 2}, Observer: tel.obs}

	// The server quotes the argument in its message.
	err := txn.WithTx(ctx, b.Pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT $1::int", secret)
		return err
	})
	require.ErrorContains(t, err, secret)
	// fn's own error carries it.
	err = txn.WithTx(ctx, b.Pool, opts, func(ctx context.Context, tx pgx.Tx) error {
		return fmt.Errorf("refused %s: %w", secret, errors.New(secret))
	})
	require.ErrorContains(t, err, secret)
	// A retried statement with it as argument.
	err = txn.WithTx(ctx, b.Pool, txn.Options{Retry: fastRetry(3), Observer: tel.obs}, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT $1::text WHERE false", secret); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = '40001'; END $$")
		return err
	})
	require.Error(t, err)
	// A locking read with it as argument, and one that fails quoting it.
	err = txn.WithTx(ctx, b.Pool, txn.Options{Observer: tel.obs}, func(ctx context.Context, tx pgx.Tx) error {
		var v int
		if err := locks.QueryRow(ctx, tx, locks.Options{}, "SELECT v FROM t WHERE id = 1 AND $1::text <> ''", secret).Scan(&v); err != nil {
			return err
		}
		return locks.QueryRow(ctx, tx, locks.Options{}, "SELECT v FROM t WHERE id = $1::int", secret).Scan(&v)
	})
	require.ErrorContains(t, err, secret)
	require.NotEmpty(t, named(tel.spans, txotel.SpanRowLock))
	l, err := advisory.Acquire(ctx, b.Pool, "lock", advisory.Options{Observer: tel.obs})
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))

	dsn := b.Pool.Config().ConnString()
	forbidden := []string{secret, dsn, "postgres://", "SELECT", "password"}
	check := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			for _, f := range forbidden {
				require.NotContains(t, strings.ToLower(kv.Value.String()), strings.ToLower(f), "%s: attribute %s", where, kv.Key)
			}
		}
	}
	spans := tel.spans.Ended()
	require.NotEmpty(t, spans)
	for _, s := range spans {
		check(s.Name(), s.Attributes())
		for _, f := range forbidden {
			require.NotContains(t, s.Status().Description, f, "%s: status", s.Name())
		}
		for _, e := range s.Events() {
			check(s.Name()+"/"+e.Name, e.Attributes)
		}
	}
	var rm metricdata.ResourceMetrics
	require.NoError(t, tel.reader.Collect(context.Background(), &rm))
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range pointSets(m) {
				check(m.Name, set.ToSlice())
				n++
			}
		}
	}
	require.Positive(t, n)
}

func pointSets(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	}
	return out
}

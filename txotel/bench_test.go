package txotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// BenchmarkWithTx compares the one-UPDATE transaction with no observer
// and with txotel's tracing and metrics on the SDK, exporting to nowhere
// (every span sampled and processed; metrics aggregated, never read),
// in one run.
func BenchmarkWithTx(b *testing.B) {
	bb := pgtest.Setup(b, pgtest.Schema(schema))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := txotel.New(txotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	update := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
		return err
	}
	for _, c := range []struct {
		name string
		obs  txn.Observer
	}{{"off", nil}, {"on", obs}} {
		b.Run(c.name, func(b *testing.B) {
			opts := txn.Options{Name: "bench", Observer: c.obs}
			for b.Loop() {
				if err := txn.WithTx(bb.Ctx, bb.Pool, opts, update); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkObserverOnly is the observer's own cost per transaction (start,
// end, duration and attempts recorded, spans processed by the SDK), without
// the server: a figure that a loaded machine does not drown, to set against
// the transaction's round trips in BenchmarkWithTx. "tx" is the call's span
// and metrics alone; "tx+attempt" adds the one attempt's span, as WithTx
// reports it.
func BenchmarkObserverOnly(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := txotel.New(txotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, attempt := range []bool{false, true} {
		name := "tx"
		if attempt {
			name = "tx+attempt"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := obs.TxStart(ctx, txn.TxStartData{Name: "bench"})
				if attempt {
					a := obs.TxAttemptStart(c, txn.TxAttemptStartData{Name: "bench", Attempt: 1})
					obs.TxAttemptEnd(a, txn.TxAttemptEndData{Name: "bench", Attempt: 1, Outcome: txn.Committed, Duration: time.Millisecond})
				}
				obs.TxEnd(c, txn.TxEndData{Name: "bench", Attempts: 1, Outcome: txn.Committed, Duration: time.Millisecond})
			}
		})
	}
}

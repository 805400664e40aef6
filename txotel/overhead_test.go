package txotel_test

import (
	"context"
	"os"
	"strconv"
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

// sdkObserver is txotel on the SDK as a service would run it: every span
// sampled and handed to a batching exporter that discards it, metrics
// aggregated by a reader that is never read.
func sdkObserver(tb testing.TB) *txotel.Observer {
	tb.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := txotel.New(txotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		tb.Fatal(err)
	}
	return obs
}

func updateOne(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "UPDATE t SET v = v + 1 WHERE id = 1")
	return err
}

// BenchmarkWithTxInterleaved runs the one-UPDATE transaction with txotel
// off and on, alternating every 16 transactions in one loop, and reports
// each side's mean time per transaction and the overhead of on over off:
// load that comes and goes on the machine falls on both sides alike.
func BenchmarkWithTxInterleaved(b *testing.B) {
	bb := pgtest.Setup(b, pgtest.Schema(schema))
	obs := sdkObserver(b)
	const block = 16
	opts := [2]txn.Options{{Name: "bench"}, {Name: "bench", Observer: obs}}
	var spent [2]time.Duration
	var count [2]int
	i := 0
	for b.Loop() {
		side := (i / block) % 2
		i++
		start := time.Now()
		if err := txn.WithTx(bb.Ctx, bb.Pool, opts[side], updateOne); err != nil {
			b.Fatal(err)
		}
		spent[side] += time.Since(start)
		count[side]++
	}
	if count[0] == 0 || count[1] == 0 {
		return
	}
	off := float64(spent[0]) / float64(count[0])
	on := float64(spent[1]) / float64(count[1])
	b.ReportMetric(off, "off-ns/tx")
	b.ReportMetric(on, "on-ns/tx")
	b.ReportMetric(100*(on-off)/off, "overhead-%")
}

// TestCallgrindWorkload runs a fixed number of one-UPDATE transactions,
// with txotel off or on, for counting the client's instructions under
// valgrind --tool=callgrind (see README, Performance). It runs only when
// TXOTEL_WORKLOAD is "off" or "on"; TXOTEL_WORKLOAD_N sets the number of
// transactions (default 1000).
func TestCallgrindWorkload(t *testing.T) {
	mode := os.Getenv("TXOTEL_WORKLOAD")
	if mode != "off" && mode != "on" {
		t.Skip("set TXOTEL_WORKLOAD=off or on to run")
	}
	n := 1000
	if s := os.Getenv("TXOTEL_WORKLOAD_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	b := pgtest.Setup(t, pgtest.Schema(schema))
	opts := txn.Options{Name: "bench"}
	if mode == "on" {
		opts.Observer = sdkObserver(t)
	}
	for range n {
		if err := txn.WithTx(b.Ctx, b.Pool, opts, updateOne); err != nil {
			t.Fatal(err)
		}
	}
}

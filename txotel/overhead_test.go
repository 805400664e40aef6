package txotel_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

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
// off and on, alternating every 16 transactions in one loop. It reports
// each side's mean time per transaction, and the overhead of on over off
// as the median, over pairs of neighbouring blocks (off then on), of the
// ratio of their times: load that comes and goes on the machine falls on
// both blocks of a pair alike, and a burst spoils a few pairs, not the
// median.
//
// Sub-benchmarks: "sdk" is tracing and metrics on the SDK (as
// sdkObserver); "metrics" the SDK's metrics with OpenTelemetry's no-op
// tracer; "traces" the SDK's tracing with the no-op meter; "sync-traces"
// tracing through a synchronous span processor, which hands each span to
// the exporter on the caller's goroutine instead of waking the batcher's.
func BenchmarkWithTxInterleaved(b *testing.B) {
	bb := pgtest.Setup(b, pgtest.Schema(schema))
	variants := []struct {
		name string
		obs  *txotel.Observer
	}{
		{"sdk", sdkObserver(b)},
		{"metrics", newObserver(b, tracenoop.NewTracerProvider(), sdkMeter(b))},
		{"traces", newObserver(b, sdkTracer(b, false), metricnoop.NewMeterProvider())},
		{"sync-traces", newObserver(b, sdkTracer(b, true), metricnoop.NewMeterProvider())},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { interleave(b, bb, v.obs) })
	}
}

func sdkTracer(tb testing.TB, sync bool) *sdktrace.TracerProvider {
	var opt sdktrace.TracerProviderOption
	if sync {
		opt = sdktrace.WithSyncer(tracetest.NewNoopExporter())
	} else {
		opt = sdktrace.WithBatcher(tracetest.NewNoopExporter()) // starts the batcher's goroutine
	}
	tp := sdktrace.NewTracerProvider(opt)
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

func sdkMeter(tb testing.TB) *sdkmetric.MeterProvider {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp
}

func newObserver(tb testing.TB, tp trace.TracerProvider, mp metric.MeterProvider) *txotel.Observer {
	obs, err := txotel.New(txotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		tb.Fatal(err)
	}
	return obs
}

func interleave(b *testing.B, bb *pgtest.Bundle, obs *txotel.Observer) {
	ctx := context.Background() // bb.Ctx is bounded to a minute, shorter than a run
	const block = 16
	opts := [2]txn.Options{{Name: "bench"}, {Name: "bench", Observer: obs}}
	var (
		spent  [2]time.Duration
		count  [2]int
		blockT [2]time.Duration
		ratios []float64
	)
	i := 0
	for b.Loop() {
		side := (i / block) % 2
		i++
		start := time.Now()
		if err := txn.WithTx(ctx, bb.Pool, opts[side], updateOne); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		spent[side] += d
		count[side]++
		blockT[side] += d
		if i%(2*block) == 0 {
			ratios = append(ratios, float64(blockT[1])/float64(blockT[0]))
			blockT = [2]time.Duration{}
		}
	}
	if count[0] == 0 || count[1] == 0 || len(ratios) == 0 {
		return
	}
	b.ReportMetric(float64(spent[0])/float64(count[0]), "off-ns/tx")
	b.ReportMetric(float64(spent[1])/float64(count[1]), "on-ns/tx")
	slices.Sort(ratios)
	b.ReportMetric(100*(ratios[len(ratios)/2]-1), "overhead-%")
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

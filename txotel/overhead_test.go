package txotel_test

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

// sdkObserver is txotel on the SDK as a service would run it, with the
// SDK's defaults wherever a service would keep them: every span sampled
// (the default sampler), default span limits, a batching span processor
// (sdktrace.WithBatcher with its default queue, batch size and delay)
// handing spans to an exporter that discards them, metrics aggregated by
// a reader that is never read, with the default exemplar filter (an
// exemplar is offered for each measurement made under a sampled span).
// It is the configuration of the headline figure in README, Cost.
func sdkObserver(tb testing.TB) *txotel.Observer {
	tb.Helper()
	return sdkObserverWith(tb, false, txotel.Options{})
}

// sdkObserverWith is sdkObserver with the span processor synchronous when
// sync is set, and opts' other fields (SpanEveryAttempt).
func sdkObserverWith(tb testing.TB, sync bool, opts txotel.Options) *txotel.Observer {
	tb.Helper()
	opts.TracerProvider = sdkTracer(tb, sync)
	opts.MeterProvider = sdkMeter(tb, true)
	obs, err := txotel.New(opts)
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
// sdkObserver); "sdk-sync" the same with a synchronous span processor,
// which hands each span to the exporter on the caller's goroutine instead
// of waking the batcher's; "sdk-every-attempt" the same as "sdk" with
// Options.SpanEveryAttempt (two spans per transaction); "metrics" the
// SDK's metrics with OpenTelemetry's no-op tracer; "traces" the SDK's
// tracing with the no-op meter; "sync-traces" tracing through the
// synchronous span processor; "sdk-no-exemplars" the same as "sdk" with
// the SDK's exemplar filter set to exemplar.AlwaysOffFilter (a setting a
// service must choose: not the headline figure).
func BenchmarkWithTxInterleaved(b *testing.B) {
	bb := pgtest.Setup(b, pgtest.Schema(schema))
	variants := []struct {
		name string
		obs  *txotel.Observer
	}{
		{"sdk", sdkObserver(b)},
		{"sdk-sync", sdkObserverWith(b, true, txotel.Options{})},
		{"sdk-every-attempt", sdkObserverWith(b, false, txotel.Options{SpanEveryAttempt: true})},
		{"sdk-no-exemplars", newObserver(b, sdkTracer(b, false), sdkMeter(b, false))},
		{"metrics", newObserver(b, tracenoop.NewTracerProvider(), sdkMeter(b, true))},
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

// sdkMeter is the SDK's meter provider with a reader never read; with
// exemplars false its exemplar filter is AlwaysOffFilter instead of the
// default TraceBasedFilter.
func sdkMeter(tb testing.TB, exemplars bool) *sdkmetric.MeterProvider {
	opts := []sdkmetric.Option{sdkmetric.WithReader(sdkmetric.NewManualReader())}
	if !exemplars {
		opts = append(opts, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	}
	mp := sdkmetric.NewMeterProvider(opts...)
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
// valgrind --tool=callgrind (see README, Cost). It runs only when
// TXOTEL_WORKLOAD is "off", "on" (as sdkObserver), "sync" (a synchronous
// span processor), "every" (Options.SpanEveryAttempt) or "noex" (as "on"
// with the exemplar filter AlwaysOffFilter);
// TXOTEL_WORKLOAD_N sets the number of transactions (default 1000).
func TestCallgrindWorkload(t *testing.T) {
	mode, n := workloadEnv(t, "TXOTEL_WORKLOAD")
	b := pgtest.Setup(t, pgtest.Schema(schema))
	opts := txn.Options{Name: "bench"}
	switch mode {
	case "on":
		opts.Observer = sdkObserver(t)
	case "sync":
		opts.Observer = sdkObserverWith(t, true, txotel.Options{})
	case "every":
		opts.Observer = sdkObserverWith(t, false, txotel.Options{SpanEveryAttempt: true})
	case "noex":
		opts.Observer = newObserver(t, sdkTracer(t, false), sdkMeter(t, false))
	}
	for range n {
		if err := txn.WithTx(b.Ctx, b.Pool, opts, updateOne); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCallgrindObserverWorkload is TestCallgrindWorkload without the
// server: N one-attempt calls of the observer's events (TxStart,
// TxAttemptStart, TxAttemptEnd, TxEnd, as WithTx makes them), each
// followed by runtime.Gosched, where a transaction would wait for the
// server and the batching span processor's goroutine runs. Under
// callgrind with GOMAXPROCS=1 its count varies little from run to run:
// it is the observer's and the SDK's work, and one switch to the
// batcher's goroutine, without the network's scheduling noise. It runs
// only when TXOTEL_OBSERVER_WORKLOAD is one of TestCallgrindWorkload's
// modes; TXOTEL_WORKLOAD_N sets N (default 1000).
func TestCallgrindObserverWorkload(t *testing.T) {
	mode, n := workloadEnv(t, "TXOTEL_OBSERVER_WORKLOAD")
	var obs *txotel.Observer
	switch mode {
	case "on":
		obs = sdkObserver(t)
	case "sync":
		obs = sdkObserverWith(t, true, txotel.Options{})
	case "every":
		obs = sdkObserverWith(t, false, txotel.Options{SpanEveryAttempt: true})
	case "noex":
		obs = newObserver(t, sdkTracer(t, false), sdkMeter(t, false))
	}
	ctx := context.Background()
	for range n {
		if obs != nil {
			c := obs.TxStart(ctx, txn.TxStartData{Name: "bench"})
			a := obs.TxAttemptStart(c, txn.TxAttemptStartData{Name: "bench", Attempt: 1})
			obs.TxAttemptEnd(a, txn.TxAttemptEndData{Name: "bench", Attempt: 1, Outcome: txn.Committed, Duration: time.Millisecond})
			obs.TxEnd(c, txn.TxEndData{Name: "bench", Attempts: 1, Outcome: txn.Committed, Duration: time.Millisecond})
		}
		runtime.Gosched()
	}
}

// workloadEnv reads a callgrind workload's mode from the variable key and
// its size from TXOTEL_WORKLOAD_N (default 1000), and skips t when the
// mode is not one of off, on, sync, every and noex.
func workloadEnv(t *testing.T, key string) (mode string, n int) {
	t.Helper()
	mode = os.Getenv(key)
	if !slices.Contains([]string{"off", "on", "sync", "every", "noex"}, mode) {
		t.Skip("set " + key + "=off, on, sync, every or noex to run")
	}
	n = 1000
	if s := os.Getenv("TXOTEL_WORKLOAD_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	return mode, n
}

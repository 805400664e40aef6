// Command observe runs a small bank workload with txotel installed on the
// OpenTelemetry SDK and prints what an operator's dashboard would show:
//
//   - the retry histogram: attempts per transaction and retries by
//     SQLSTATE, from serializable transfers between a few hot accounts;
//
//   - advisory lock wait and hold times, from workers taking one lock;
//
//   - the pool's pending requests under load, sampled while more workers
//     than connections run.
//
//     go run ./examples/observe                  # a throwaway local cluster, or DATABASE_URL
//     go run ./examples/observe -workers 16 -duration 5s
//
// Metrics are read with the SDK's ManualReader; a service would use a
// PeriodicReader and an OTLP exporter instead. It creates the table
// observe_example_accounts and drops it at exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/txkit/txkit/advisory"
	"github.com/txkit/txkit/examples/internal/cli"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/retry"
	"github.com/txkit/txkit/txn"
	"github.com/txkit/txkit/txotel"
)

type config struct {
	DSN      string
	Workers  int
	Conns    int
	Accounts int
	Duration time.Duration
}

func main() { cli.Main("observe", parseFlags, run) }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("observe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.DSN, "dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	fs.IntVar(&c.Workers, "workers", 8, "concurrent workers")
	fs.IntVar(&c.Conns, "conns", 3, "pool size (fewer than workers, so requests wait)")
	fs.IntVar(&c.Accounts, "accounts", 4, "accounts (fewer means more serialization failures)")
	fs.DurationVar(&c.Duration, "duration", 3*time.Second, "how long to run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Workers < 1 || c.Conns < 1 || c.Accounts < 2 || c.Duration <= 0 {
		return c, errors.New("workers and conns must be at least 1, accounts at least 2, duration positive")
	}
	return c, nil
}

func run(ctx context.Context, c config, out io.Writer) (err error) {
	p := &printer{w: out}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider() // no exporter: spans are made and dropped
	defer func() {
		err = errors.Join(err, tp.Shutdown(context.WithoutCancel(ctx)), mp.Shutdown(context.WithoutCancel(ctx)))
	}()
	obs, err := txotel.New(txotel.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		return err
	}
	pm, err := obs.Pool(txotel.PoolOptions{Name: "observe"})
	if err != nil {
		return err
	}
	db, source, closeAll, err := cli.OpenPool(ctx, c.DSN, pool.Options{MaxConns: int32(c.Conns), Tracer: pm, AcquireTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeAll()) }()
	p.printf("database: %s\n", source)
	reg, err := pm.Observe(db.Pgx())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, reg.Unregister()) }()

	if _, err := db.Exec(ctx, `DROP TABLE IF EXISTS observe_example_accounts;
		CREATE TABLE observe_example_accounts (id int PRIMARY KEY, balance bigint NOT NULL)`); err != nil {
		return err
	}
	if _, err := db.Exec(ctx, "INSERT INTO observe_example_accounts SELECT g, 1000 FROM generate_series(1, $1::int) g", c.Accounts); err != nil {
		return err
	}
	defer func() {
		_, dropErr := db.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS observe_example_accounts")
		err = errors.Join(err, dropErr)
	}()

	pending, err := load(ctx, c, db, obs, reader)
	if err != nil {
		return err
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	printReport(p, rm, pending)
	return p.err
}

// load runs the workers for c.Duration and samples the pool's pending
// requests meanwhile; it returns the samples.
func load(ctx context.Context, c config, db *pool.Pool, obs *txotel.Observer, reader *sdkmetric.ManualReader) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, c.Workers)
	for w := range c.Workers {
		wg.Go(func() {
			if err := worker(ctx, w, c, db, obs); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		})
	}
	var samples []int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.WithoutCancel(ctx), &rm); err == nil {
				samples = append(samples, int64Sum(rm, "db.client.connection.pending_requests"))
			}
		}
	}
	wg.Wait()
	close(errs)
	return samples, <-errs
}

// worker makes transfers; every fifth iteration it takes the audit lock
// instead, as a singleton job would.
func worker(ctx context.Context, w int, c config, db *pool.Pool, obs *txotel.Observer) error {
	rng := rand.New(rand.NewPCG(uint64(w), 1))
	opts := txn.Options{Name: "transfer", Isolation: isolation.Serializable, Observer: obs}
	for i := 0; ctx.Err() == nil; i++ {
		if i%5 == 4 {
			// The lock holds a connection of its own: the work under it
			// takes no second one, so that workers cannot starve the pool.
			err := advisory.WithLock(ctx, db.Pgx(), "observe-audit", advisory.Options{Observer: obs}, func(ctx context.Context) error {
				time.Sleep(2 * time.Millisecond) // the audit's work
				return nil
			})
			if err != nil {
				return err
			}
			continue
		}
		from, to := 1+rng.IntN(c.Accounts), 1+rng.IntN(c.Accounts)
		if from == to {
			continue
		}
		err := txn.WithTx(ctx, db, opts, func(ctx context.Context, tx pgx.Tx) error {
			var bal int64
			if err := tx.QueryRow(ctx, "SELECT balance FROM observe_example_accounts WHERE id = $1", from).Scan(&bal); err != nil {
				return err
			}
			if bal < 1 {
				return nil
			}
			_, err := tx.Exec(ctx, `UPDATE observe_example_accounts SET balance = balance + CASE id WHEN $1 THEN -1 ELSE 1 END
				WHERE id IN ($1, $2)`, from, to)
			return err
		})
		// Under this much contention a transfer may run out of attempts:
		// it shows in the metrics as rolled back, and the worker goes on.
		if err != nil && !errors.Is(err, retry.ErrExhausted) {
			return err
		}
	}
	return nil
}

func printReport(p *printer, rm metricdata.ResourceMetrics, pending []int64) {
	p.printf("\ntransactions: attempts per call (the retry histogram)\n")
	histogram(p, find(rm, "txkit.tx.attempts"), "%g")
	p.printf("\nretries by SQLSTATE\n")
	for _, kv := range counts(find(rm, "txkit.tx.retries"), "db.response.status_code") {
		p.printf("  %-8s %d\n", kv.k, kv.v)
	}
	p.printf("\nadvisory lock wait time (s)\n")
	histogram(p, find(rm, "txkit.advisory.wait_time"), "≤%gs")
	p.printf("\nadvisory lock hold time (s)\n")
	histogram(p, find(rm, "txkit.advisory.hold_time"), "≤%gs")
	p.printf("\npool: connection wait time (s)\n")
	histogram(p, find(rm, "db.client.connection.wait_time"), "≤%gs")
	var peak, sum int64
	for _, p := range pending {
		peak = max(peak, p)
		sum += p
	}
	mean := 0.0
	if len(pending) > 0 {
		mean = float64(sum) / float64(len(pending))
	}
	p.printf("\npool: pending requests under load: %d samples, peak %d, mean %.1f\n", len(pending), peak, mean)
}

func find(rm metricdata.ResourceMetrics, name string) metricdata.Aggregation {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

func int64Sum(rm metricdata.ResourceMetrics, name string) int64 {
	var n int64
	if s, ok := find(rm, name).(metricdata.Sum[int64]); ok {
		for _, p := range s.DataPoints {
			n += p.Value
		}
	}
	return n
}

type kv struct {
	k string
	v int64
}

func counts(a metricdata.Aggregation, key string) []kv {
	m := map[string]int64{}
	if s, ok := a.(metricdata.Sum[int64]); ok {
		for _, p := range s.DataPoints {
			v, _ := p.Attributes.Value(attribute.Key(key))
			m[v.String()] += p.Value
		}
	}
	var out []kv
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].k < out[j].k })
	if len(out) == 0 {
		out = append(out, kv{"(none)", 0})
	}
	return out
}

// histogram prints the buckets of every data point merged, with a bar.
func histogram(p *printer, a metricdata.Aggregation, label string) {
	var bounds []float64
	var buckets []uint64
	var total uint64
	add := func(b []float64, c []uint64, n uint64) {
		if bounds == nil {
			bounds, buckets = b, make([]uint64, len(c))
		}
		for i := range c {
			buckets[i] += c[i]
		}
		total += n
	}
	switch h := a.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range h.DataPoints {
			add(p.Bounds, p.BucketCounts, p.Count)
		}
	case metricdata.Histogram[int64]:
		for _, p := range h.DataPoints {
			add(p.Bounds, p.BucketCounts, p.Count)
		}
	}
	if total == 0 {
		p.printf("  (nothing recorded)\n")
		return
	}
	for i, n := range buckets {
		if n == 0 {
			continue
		}
		name := "more"
		if i < len(bounds) {
			name = fmt.Sprintf(label, bounds[i])
		}
		bar := strings.Repeat("#", int(1+39*n/total))
		p.printf("  %-8s %6d %s\n", name, n, bar)
	}
}

// printer writes the report and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

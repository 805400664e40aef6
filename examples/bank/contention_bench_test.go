package main

import (
	"context"
	"github.com/jackc/pgx/v5/pgxpool"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/tests/pgtest"
)

// BenchmarkContention runs the bank workload (random transfers among a few
// hot accounts at SERIALIZABLE) under the default retry policy, the same
// with txn.Options.NoRetryQueue, and an immediate-retry loop, at 8 and 32
// workers, and reports commits/s, retries
// per commit, p99 latency and calls that failed. One run per case:
//
//	go test -run '^$' -bench Contention -benchtime 1x ./examples/bank
//
// BENCH_DURATION (default 5s) sets how long each case runs.
func BenchmarkContention(b *testing.B) {
	d := 5 * time.Second
	if s := benchDuration(); s > 0 {
		d = s
	}
	for _, policy := range []string{"default", "default+no-retry-queue", "immediate"} {
		for _, workers := range []int{8, 32} {
			b.Run(policy+"/workers="+itoa(workers), func(b *testing.B) {
				cfg := config{Workers: workers, Accounts: 4, Duration: d, Isolation: isolation.Serializable,
					Retry: retryPolicies[strings.TrimSuffix(policy, "+no-retry-queue")], NoRetryQueue: strings.HasSuffix(policy, "+no-retry-queue")}
				ctx := context.Background()
				pool := pgtest.NewPool(b, func(c *pgxpool.Config) { c.MaxConns = int32(workers) })
				if err := setup(ctx, pool, cfg.Accounts); err != nil {
					b.Fatal(err)
				}
				var res *results
				for b.Loop() {
					res = runWorkers(ctx, pool, cfg)
				}
				t := res.total
				failed := 0
				for kind, n := range t.failures {
					if kind != "declined: insufficient funds" {
						failed += n
					}
				}
				b.ReportMetric(float64(t.commits)/res.elapsed.Seconds(), "commits/s")
				b.ReportMetric(float64(t.totalRetries())/float64(max(t.commits, 1)), "retries/commit")
				b.ReportMetric(float64(p99(t.latencies))/float64(time.Millisecond), "p99-ms")
				b.ReportMetric(float64(failed), "failed")
				b.ReportMetric(0, "ns/op") // one timed run, not a per-op cost
			})
		}
	}
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

func benchDuration() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("BENCH_DURATION"))
	return d
}

func itoa(n int) string { return strconv.Itoa(n) }

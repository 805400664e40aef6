// Command leader runs several contenders that elect a leader with
// advisory.Lead. The leader runs a periodic job, a fenced write into the
// database. Every few seconds the leader's connection is killed from the
// outside (pg_terminate_backend, as an operator or a failing network
// would), and another contender takes over. At the end the program checks,
// from the database, that no two leaders ever wrote in each other's term,
// prints what happened, and exits non-zero if the check failed.
//
//	go run ./examples/leader                     # contenders as goroutines
//	go run ./examples/leader -processes          # contenders as OS processes
//	go run ./examples/leader -contenders 5 -duration 20s -kill-every 3s
//
// It uses the -dsn flag or DATABASE_URL; with neither it starts a throwaway
// PostgreSQL cluster from the local server binaries and removes it at exit. It
// creates the tables leader_example_state, leader_example_ticks and
// leader_example_refused (dropped at exit unless -keep) and the fence
// table txkit_advisory_fence.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/examples/internal/cli"
)

// lockName is the name contenders campaign for.
const lockName = "examples/leader"

type config struct {
	dsn        string // empty: DATABASE_URL, else a throwaway local cluster
	contenders int
	duration   time.Duration
	killEvery  time.Duration
	tick       time.Duration
	check      time.Duration
	processes  bool
	keep       bool
	worker     int // >= 0: run as contender number worker (a child process)
}

func main() {
	var c config
	flag.StringVar(&c.dsn, "dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	flag.IntVar(&c.contenders, "contenders", 3, "number of contenders")
	flag.DurationVar(&c.duration, "duration", 8*time.Second, "how long to run")
	flag.DurationVar(&c.killEvery, "kill-every", 2*time.Second, "how often to kill the leader's connection (0: never)")
	flag.DurationVar(&c.tick, "tick", 100*time.Millisecond, "how often the leader's job runs")
	flag.DurationVar(&c.check, "check-interval", 200*time.Millisecond, "how often a leader checks its lock's connection")
	flag.BoolVar(&c.processes, "processes", false, "run each contender as a separate OS process")
	flag.BoolVar(&c.keep, "keep", false, "keep the example's tables at exit")
	flag.IntVar(&c.worker, "worker", -1, "internal: run as this contender (used with -processes)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if c.worker >= 0 {
		err = runWorker(ctx, c)
	} else {
		err = run(ctx, c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "leader:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.contenders < 1 || c.duration <= 0 || c.tick <= 0 || c.check <= 0 || c.killEvery < 0 {
		return errors.New("need -contenders >= 1 and positive -duration, -tick and -check-interval")
	}
	url, _, stopServer, err := cli.Database(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopServer(); err != nil {
			fmt.Fprintln(os.Stderr, "leader: stopping the server:", err)
		}
	}()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := createTables(ctx, pool); err != nil {
		return err
	}
	if !c.keep {
		defer dropTables(pool)
	}
	fmt.Printf("%d contenders (%s) for %v; the leader's connection is killed every %v\n",
		c.contenders, map[bool]string{false: "goroutines", true: "processes"}[c.processes], c.duration, c.killEvery)

	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var contenders *group
	if c.processes {
		contenders, err = startProcesses(runCtx, c, url)
	} else {
		contenders, err = startGoroutines(runCtx, c, url)
	}
	if err != nil {
		return err
	}
	kills := killLeaders(runCtx, pool, c.killEvery)
	errs := contenders.wait()
	report, err := check(context.WithoutCancel(ctx), pool)
	if err != nil {
		return err
	}
	report.print(kills, contenders)
	errs = append(errs, report.violations...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fmt.Println("OK: mutual exclusion held")
	return nil
}

// Command jobqueue drains a queue of jobs kept in a PostgreSQL table with a
// few workers, each claiming batches of ready jobs with FOR UPDATE SKIP
// LOCKED (locks.Queue) and doing the work in the transaction that claims
// them. Then it checks that every job was processed exactly once.
//
//	go run ./examples/jobqueue                      # no setup: a throwaway local cluster
//	DATABASE_URL=postgres://... go run ./examples/jobqueue -jobs 20000 -workers 16
//
// Some jobs fail on their first try (-fail-every): the batch they are in
// rolls back, and its jobs become ready again for any worker. The checks
// show that no job was lost or done twice anyway.
//
// The program owns the tables jobqueue_jobs and jobqueue_results in the
// database it is given: it drops and recreates them at start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/txkit/txkit/examples/internal/cli"
	"github.com/txkit/txkit/examples/internal/report"
	"github.com/txkit/txkit/pool"
)

// config is what the flags set.
type config struct {
	// DSN is the database to use (-dsn); empty means DATABASE_URL, and
	// if that is empty too, a throwaway cluster from the local PostgreSQL
	// server binaries.
	DSN       string
	Jobs      int
	Workers   int
	Batch     int
	FailEvery int
	Timeout   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("jobqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.DSN, "dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	fs.IntVar(&cfg.Jobs, "jobs", 5000, "jobs to enqueue")
	fs.IntVar(&cfg.Workers, "workers", 8, "concurrent workers, each with its own connection")
	fs.IntVar(&cfg.Batch, "batch", 20, "jobs a worker claims at a time")
	fs.IntVar(&cfg.FailEvery, "fail-every", 97, "every n-th job fails on its first try (0: none)")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "give up if the queue is not drained by then")
	if err := cli.Parse(fs, args); err != nil {
		return config{}, err
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	var errs []error
	if c.Jobs < 1 {
		errs = append(errs, fmt.Errorf("-jobs %d: want at least 1", c.Jobs))
	}
	if c.Workers < 1 || c.Workers > 1000 {
		errs = append(errs, fmt.Errorf("-workers %d: want 1 to 1000", c.Workers))
	}
	if c.Batch < 1 {
		errs = append(errs, fmt.Errorf("-batch %d: want at least 1", c.Batch))
	}
	if c.FailEvery < 0 {
		errs = append(errs, fmt.Errorf("-fail-every %d: want 0 or more", c.FailEvery))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: want a positive duration", c.Timeout))
	}
	return errors.Join(errs...)
}

func main() { cli.Main("jobqueue", parseFlags, run) }

// errChecksFailed is returned by run when the data does not add up.
var errChecksFailed = errors.New("invariant checks failed")

// run enqueues the jobs, drains the queue, checks the result and writes a
// report to out. It stops any server it started before it returns.
func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	// txkit's pool on -dsn, DATABASE_URL or a throwaway cluster; see
	// cli.OpenPool, and examples/pool for what the pool adds.
	db, source, closeAll, err := cli.OpenPool(ctx, cfg.DSN, pool.Options{MaxConns: int32(cfg.Workers)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeAll()) }()
	pool := db.Pgx()
	if err := setup(ctx, pool, cfg.Jobs); err != nil {
		return err
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	res := drain(runCtx, pool, cfg)
	cancel()

	// Check even after a timeout or an interrupt: whatever was committed
	// must still be right.
	checkCtx, cancelCheck := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancelCheck()
	checks, err := verify(checkCtx, pool, cfg, res)
	if err != nil {
		return fmt.Errorf("checking the result: %w", err)
	}
	if err := writeReport(out, cfg, source, res, checks); err != nil {
		return err
	}
	if report.Failed(checks) {
		return errChecksFailed
	}
	return res.err
}

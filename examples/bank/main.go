// Command bank moves money between a few hot accounts from many goroutines
// at once, each transfer in a txn.WithTx transaction, and then checks that
// no money was created or lost and that the ledger holds exactly the
// transfers WithTx reported as committed.
//
//	go run ./examples/bank                        # no setup: a throwaway local cluster
//	DATABASE_URL=postgres://... go run ./examples/bank -workers 32 -duration 10s
//	go run ./examples/bank -isolation 'read committed'   # watch the checks fail
//
// Each transfer reads both balances, checks funds, and writes the balances
// it computed: a read-modify-write that SERIALIZABLE (and REPEATABLE READ)
// make safe by aborting one of two conflicting transfers with 40001, which
// WithTx retries. At READ COMMITTED updates get lost and the total drifts.
//
// The program owns the tables bank_accounts and bank_ledger in the database
// it is given: it drops and recreates them at start.
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
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/retry"
)

// config is what the flags set.
type config struct {
	// DSN is the database to use (-dsn); empty means DATABASE_URL, and
	// if that is empty too, a throwaway cluster from the local PostgreSQL
	// server binaries.
	DSN       string
	Workers   int
	Accounts  int
	Duration  time.Duration
	Isolation isolation.Level
	// Retry is the retry policy of each transfer; nil is retry.Default().
	Retry *retry.Policy
	// NoRetryQueue sets txn.Options.NoRetryQueue (-no-retry-queue): the
	// transfers do not take turns after a conflict.
	NoRetryQueue bool
}

// retryPolicies are the -retry choices: the library's default, and the
// naive loop that retries at once, for comparison.
var retryPolicies = map[string]*retry.Policy{
	"default":   nil,
	"immediate": immediateRetry,
}

// immediateRetry retries at once, up to the default number of attempts:
// what a hand-written `for { if err == 40001 { continue } }` loop does.
var immediateRetry = &retry.Policy{
	MaxAttempts:         retry.DefaultMaxAttempts,
	InitialInterval:     time.Nanosecond,
	MaxInterval:         time.Nanosecond,
	RandomizationFactor: -1,
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bank", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.DSN, "dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	fs.IntVar(&cfg.Workers, "workers", 16, "concurrent workers, each with its own connection")
	fs.IntVar(&cfg.Accounts, "accounts", 4, "accounts to move money between (few accounts = hot rows)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long to keep transferring")
	level := fs.String("isolation", "serializable", "isolation level: serializable, repeatable read, read committed")
	policy := fs.String("retry", "default", "retry policy: default (jittered exponential backoff) or immediate")
	fs.BoolVar(&cfg.NoRetryQueue, "no-retry-queue", false, "transfers do not take turns after a conflict (txn.Options.NoRetryQueue)")
	if err := cli.Parse(fs, args); err != nil {
		return config{}, err
	}
	var err error
	if cfg.Isolation, err = isolation.Parse(*level); err != nil {
		return config{}, err
	}
	p, ok := retryPolicies[*policy]
	if !ok {
		return config{}, fmt.Errorf("-retry %q: want default or immediate", *policy)
	}
	cfg.Retry = p
	return cfg, cfg.validate()
}

func (c config) validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 1000 {
		errs = append(errs, fmt.Errorf("-workers %d: want 1 to 1000", c.Workers))
	}
	if c.Accounts < 2 {
		errs = append(errs, fmt.Errorf("-accounts %d: a transfer needs 2 accounts", c.Accounts))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration %v: want a positive duration", c.Duration))
	}
	return errors.Join(errs...)
}

func main() { cli.Main("bank", parseFlags, run) }

// errChecksFailed is returned by run when the data does not add up.
var errChecksFailed = errors.New("invariant checks failed")

// run sets up the tables, runs the workers for cfg.Duration, checks the
// result and writes a report to out. It stops any server it started before
// it returns, on every path.
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
	if err := setup(ctx, pool, cfg.Accounts); err != nil {
		return err
	}

	res := runWorkers(ctx, pool, cfg)

	// Check even after an interrupt: the data must add up whatever
	// happened to the transfers in flight.
	checkCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	checks, err := verify(checkCtx, pool, cfg, res, ctx.Err() != nil)
	if err != nil {
		return fmt.Errorf("checking the result: %w", err)
	}
	if err := writeReport(out, cfg, source, res, checks); err != nil {
		return err
	}
	if report.Failed(checks) {
		return errChecksFailed
	}
	if res.total.commits == 0 {
		return errors.New("no transfer committed")
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return nil
}

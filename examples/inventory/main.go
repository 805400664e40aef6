// Command inventory runs shoppers that reserve stock of a few hot items at
// once through a repository whose writes are versioned updates
// (optimistic.Modify): each reads an item, checks and changes its stock,
// and saves it only if nobody saved it in between; a save that lost that
// race starts again from a fresh read. Then it checks that no stock was
// created or lost and that every write moved the version on by one.
//
//	go run ./examples/inventory                     # no setup: a throwaway local cluster
//	DATABASE_URL=postgres://... go run ./examples/inventory -shoppers 32 -items 2
//	go run ./examples/inventory -naive              # no version check: watch the checks fail
//
// Each reservation also records its order in the same transaction (the
// repository joins the caller's transaction through the ctx), and some
// shoppers restock instead of buying. Fewer items mean hotter rows and
// more conflicts.
//
// The program owns the tables inventory_items, inventory_orders and
// inventory_restocks in the database it is given: it drops and recreates
// them at start.
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
	DSN      string
	Shoppers int
	Orders   int
	Items    int
	Stock    int
	Timeout  time.Duration
	Naive    bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.DSN, "dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	fs.IntVar(&cfg.Shoppers, "shoppers", 8, "concurrent shoppers, each with its own connection")
	fs.IntVar(&cfg.Orders, "orders", 150, "orders (reservations or restocks) each shopper places")
	fs.IntVar(&cfg.Items, "items", 3, "items on sale (few items = hot rows)")
	fs.IntVar(&cfg.Stock, "stock", 300, "each item's stock at the start")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "stop placing orders after this long")
	fs.BoolVar(&cfg.Naive, "naive", false, "save without the version check, and watch updates get lost")
	if err := cli.Parse(fs, args); err != nil {
		return config{}, err
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	var errs []error
	if c.Shoppers < 1 || c.Shoppers > 1000 {
		errs = append(errs, fmt.Errorf("-shoppers %d: want 1 to 1000", c.Shoppers))
	}
	if c.Orders < 1 {
		errs = append(errs, fmt.Errorf("-orders %d: want at least 1", c.Orders))
	}
	if c.Items < 1 {
		errs = append(errs, fmt.Errorf("-items %d: want at least 1", c.Items))
	}
	if c.Stock < 0 {
		errs = append(errs, fmt.Errorf("-stock %d: want 0 or more", c.Stock))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout %v: want a positive duration", c.Timeout))
	}
	return errors.Join(errs...)
}

func main() { cli.Main("inventory", parseFlags, run) }

// errChecksFailed is returned by run when the data does not add up.
var errChecksFailed = errors.New("invariant checks failed")

// run stocks the items, runs the shoppers, checks the result and writes a
// report to out. It stops any server it started before it returns.
func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	// txkit's pool on -dsn, DATABASE_URL or a throwaway cluster; see
	// cli.OpenPool, and examples/pool for what the pool adds.
	db, source, closeAll, err := cli.OpenPool(ctx, cfg.DSN, pool.Options{MaxConns: int32(cfg.Shoppers)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeAll()) }()
	pool := db.Pgx()
	if err := setup(ctx, pool, cfg.Items, cfg.Stock); err != nil {
		return err
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	res := shop(runCtx, pool, cfg)
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

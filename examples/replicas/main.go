// Command replicas runs a read-heavy workload on a primary and two
// streaming replicas through a cluster.Cluster, on throwaway servers
// started from the local PostgreSQL binaries, and promotes a replica
// midway. It shows the reads each node served, how many reads missed the
// reader's own last write with and without a read-your-writes Session, and
// checks that no commit WithTx reported was lost in the failover.
//
//	go run ./examples/replicas
//	go run ./examples/replicas -workers 16 -duration 10s -apply-delay 50ms
//
// Each worker owns one counter row. In a loop it increments it (on the
// primary) with a Session in ctx, then reads it back three times with the
// Session and once without, on whichever node the Cluster picks; a read
// that returns less than the value the worker just wrote is stale. The
// replicas apply WAL -apply-delay late (recovery_min_apply_delay), so that
// staleness is visible on one machine. Halfway through, the primary is
// stopped, the first replica promoted (pg_ctl promote) and the second
// re-pointed at it; the workers keep going. The program exits non-zero if
// a check fails.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/txkit/txkit/examples/internal/cli"
)

// config is what the flags set.
type config struct {
	Workers    int
	Duration   time.Duration
	ApplyDelay time.Duration
	Promote    bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("replicas", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.IntVar(&cfg.Workers, "workers", 8, "concurrent workers, each with its own counter row")
	fs.DurationVar(&cfg.Duration, "duration", 6*time.Second, "how long to run")
	fs.DurationVar(&cfg.ApplyDelay, "apply-delay", 20*time.Millisecond, "recovery_min_apply_delay of the replicas")
	fs.BoolVar(&cfg.Promote, "promote", true, "stop the primary and promote a replica halfway through")
	if err := cli.Parse(fs, args); err != nil {
		return config{}, err
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 200 {
		errs = append(errs, fmt.Errorf("-workers %d: want 1 to 200", c.Workers))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration %v: want a positive duration", c.Duration))
	}
	if c.ApplyDelay < 0 || c.ApplyDelay%time.Millisecond != 0 {
		errs = append(errs, fmt.Errorf("-apply-delay %v: want whole milliseconds, 0 or more", c.ApplyDelay))
	}
	return errors.Join(errs...)
}

func main() { cli.Main("replicas", parseFlags, run) }

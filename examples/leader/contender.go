package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/advisory"
)

// tickSQL is the leader's job: a write fenced by the term. It records a
// tick only while no later term has written; a leader whose lock has
// passed to another, but who has not noticed yet, gets 0 rows.
const tickSQL = `WITH f AS (
	UPDATE leader_example_state SET term = $1, updated_at = now() WHERE id = 1 AND term <= $1 RETURNING term)
INSERT INTO leader_example_ticks (term, contender) SELECT $1, $2 FROM f`

// believers counts, in this process, the contenders whose fn is running:
// those that believe they lead. It can briefly reach 2, while a killed
// leader has not yet seen its loss; the fence keeps the database's view
// to one.
type believers struct{ now, max atomic.Int32 }

func (b *believers) enter() {
	n := b.now.Add(1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func (b *believers) leave() { b.now.Add(-1) }

// contend runs one contender until ctx ends.
func contend(ctx context.Context, pool *pgxpool.Pool, id int, c config, bel *believers) error {
	obs := &printer{id: id}
	return advisory.Lead(ctx, pool, lockName, advisory.Options{CheckInterval: c.check, Observer: obs}, func(ctx context.Context, term int64) error {
		if bel != nil {
			bel.enter()
			defer bel.leave()
		}
		fmt.Printf("contender %d: leading, term %d\n", id, term)
		t := time.NewTicker(c.tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			if err := tick(ctx, pool, id, term); err != nil {
				return err
			}
		}
	})
}

func tick(ctx context.Context, pool *pgxpool.Pool, id int, term int64) error {
	// The write is not cut short when leadership ends mid-way (that would
	// close a pool connection for nothing); the fence decides whether it
	// counts.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	tag, err := pool.Exec(wctx, tickSQL, term, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		fmt.Printf("contender %d: term %d write refused by the fence: a newer leader has written\n", id, term)
		_, err = pool.Exec(wctx, "INSERT INTO leader_example_refused (term, contender) VALUES ($1, $2)", term, id)
	}
	return err
}

// printer reports what the leader cannot see from inside fn. It implements
// only the two events it reports.
type printer struct {
	id int
}

var (
	_ advisory.LockLostObserver  = (*printer)(nil)
	_ advisory.LeaderEndObserver = (*printer)(nil)
)

func (p *printer) LockLost(d advisory.LockLostData) {
	fmt.Printf("contender %d: lock lost after %v: %v\n", p.id, d.Held.Round(time.Millisecond), errors.Unwrap(d.Err))
}

func (p *printer) LeaderEnd(_ context.Context, d advisory.LeaderEndData) {
	fmt.Printf("contender %d: term %d ended after %v (lost: %v)\n", p.id, d.Term, d.Held.Round(time.Millisecond), d.Lost)
}

// group is the running contenders.
type group struct {
	wait      func() []error
	believers *believers // nil for processes: each has its own view
}

func startGoroutines(ctx context.Context, c config, url string) (*group, error) {
	bel := &believers{}
	var wg sync.WaitGroup
	errs := make([]error, c.contenders)
	for i := range c.contenders {
		// A pool per contender, as if each were a process of its own.
		pool, err := newPool(ctx, url)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			defer pool.Close()
			if err := contend(ctx, pool, i, c, bel); err != nil {
				errs[i] = fmt.Errorf("contender %d: %w", i, err)
			}
		})
	}
	return &group{believers: bel, wait: func() []error {
		wg.Wait()
		var out []error
		for _, err := range errs {
			if err != nil {
				out = append(out, err)
			}
		}
		return out
	}}, nil
}

func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4
	return pgxpool.NewWithConfig(ctx, cfg)
}

func startProcesses(ctx context.Context, c config, url string) (*group, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	for i := range c.contenders {
		cmd := exec.Command(exe, "-worker", strconv.Itoa(i), "-tick", c.tick.String(),
			"-check-interval", c.check.String(), "-duration", c.duration.String())
		// The server's URL travels in the environment, never on a command
		// line that ps would show.
		cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			for _, c := range cmds {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
			return nil, err
		}
		cmds = append(cmds, cmd)
	}
	return &group{wait: func() []error {
		<-ctx.Done()
		var errs []error
		for i, cmd := range cmds {
			_ = cmd.Process.Signal(os.Interrupt)
			if err := cmd.Wait(); err != nil {
				errs = append(errs, fmt.Errorf("contender %d: %w", i, err))
			}
		}
		return errs
	}}, nil
}

// runWorker is a contender in a process of its own, started by
// startProcesses; it stops on SIGINT, or on its own a little after the
// run's duration if the parent is gone.
func runWorker(ctx context.Context, c config) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("worker: DATABASE_URL is not set")
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration+10*time.Second)
	defer cancel()
	pool, err := newPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return contend(ctx, pool, c.worker, c, nil)
}

// Command pool shows what txkit's pool package does on the connection
// side, against a real server, and checks each of it:
//
//  1. it sizes the pool from the server's connection limits for a number
//     of service instances;
//
//  2. it saturates the pool and shows the acquire-timeout error with the
//     pool's counts;
//
//  3. it leaks a connection on purpose and shows the leak report with the
//     stack that took it;
//
//  4. it shuts down with a deadline, which the leaked connection does not
//     stretch, and shows the holder Close names.
//
//     go run ./examples/pool                  # a throwaway local cluster, or DATABASE_URL
//     DATABASE_URL=postgres://... go run ./examples/pool -instances 8
//
// It exits non-zero if any of the four does not happen. It creates no
// tables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/examples/internal/cli"
	"github.com/txkit/txkit/examples/internal/report"
	"github.com/txkit/txkit/pool"
)

type config struct {
	DSN            string // empty: DATABASE_URL, else a throwaway server
	Instances      int
	AcquireTimeout time.Duration
	LeakThreshold  time.Duration
	Deadline       time.Duration
	AllowInsecure  bool
}

func main() { cli.Main("pool", parseFlags, run) }

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("pool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.DSN, "dsn", "", "database URL (default: $DATABASE_URL, else a throwaway local cluster)")
	fs.IntVar(&c.Instances, "instances", 4, "service instances sharing the server")
	fs.DurationVar(&c.AcquireTimeout, "acquire-timeout", 200*time.Millisecond, "how long an acquire may wait")
	fs.DurationVar(&c.LeakThreshold, "leak-threshold", 300*time.Millisecond, "how long a connection may be held before it is reported")
	fs.DurationVar(&c.Deadline, "deadline", 500*time.Millisecond, "the shutdown deadline")
	fs.BoolVar(&c.AllowInsecure, "allow-insecure", false, "allow an sslmode below the TLS floor to a remote host")
	if err := cli.Parse(fs, args); err != nil {
		return config{}, err
	}
	if c.Instances < 1 || c.AcquireTimeout <= 0 || c.LeakThreshold <= 0 || c.Deadline <= 0 {
		return config{}, errors.New("need -instances >= 1 and positive durations")
	}
	return c, nil
}

// logBuffer keeps what the pool logged, to print and to check.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func run(ctx context.Context, c config, w io.Writer) (err error) {
	out := &printer{w: w}
	dsn, source, stopServer, err := cli.Database(ctx, c.DSN)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := stopServer(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the server: %w", cerr))
		}
	}()
	logs := &logBuffer{}
	p, err := pool.Open(ctx, dsn, pool.Options{
		Instances:      c.Instances,
		AcquireTimeout: c.AcquireTimeout,
		LeakThreshold:  c.LeakThreshold,
		CaptureStacks:  true,
		AllowInsecure:  c.AllowInsecure,
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		return err
	}
	out.printf("server: %s\n\n", source)

	var checks []report.Check
	checks = append(checks, sized(p, c.Instances, out))
	checks = append(checks, saturate(ctx, p, out))
	leaked, check := leak(ctx, p, c.LeakThreshold, logs, out)
	checks = append(checks, check)
	checks = append(checks, shutdown(ctx, p, c.Deadline, out))
	if leaked != nil {
		leaked.Release() // the holder comes back at last; the pool's cleanup ends
	}

	out.printf("\nwhat the pool logged:\n%s\n\n", indent(logs.String()))
	cfg := p.Config()
	rows := [][2]string{
		{"instances", fmt.Sprint(c.Instances)},
		{"pool size", fmt.Sprintf("%d (%s)", cfg.MaxConns, cfg.Sizing)},
		{"acquire timeout", c.AcquireTimeout.String()},
		{"leak threshold", c.LeakThreshold.String()},
		{"close deadline", c.Deadline.String()},
	}
	if err := report.Write(w, rows, checks); err != nil {
		return err
	}
	if out.err != nil {
		return out.err
	}
	if report.Failed(checks) {
		return errors.New("a check failed")
	}
	return nil
}

// sized shows the server's limits and the size chosen for one instance.
func sized(p *pool.Pool, instances int, out *printer) report.Check {
	l, ok := p.Limits()
	if !ok {
		return report.Check{Name: "sized from the server", Detail: "the limits were not read"}
	}
	size := p.Config().MaxConns
	out.printf("1. sizing: max_connections %d, reserved %d+%d, role limit %d, database limit %d, %d in use\n   -> MaxConns %d for each of %d instances (%s)\n",
		l.MaxConnections, l.SuperuserReserved, l.Reserved, l.RoleLimit, l.DatabaseLimit, l.InUse, size, instances, p.Config().Sizing)
	share := (l.MaxConnections - l.SuperuserReserved - l.Reserved) / instances
	return report.Check{
		Name:   "sized from the server",
		OK:     l.BehindPooler || (size >= 1 && int(size) <= share),
		Detail: fmt.Sprintf("MaxConns %d <= share %d", size, share),
	}
}

// saturate holds every connection and shows the timeout a further query gets.
func saturate(ctx context.Context, p *pool.Pool, out *printer) report.Check {
	check := report.Check{Name: "acquire timeout on a saturated pool"}
	var held []*pgxpool.Conn
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	// Held on purpose: these are not leaks and are not reported as such.
	holdCtx := pool.HeldOnPurpose(ctx, "saturating the pool")
	// Opening a connection counts against the acquire timeout too; on a
	// loaded machine one may take longer, so filling the pool retries.
	fillBy := time.Now().Add(30 * time.Second)
	for len(held) < int(p.Config().MaxConns) {
		c, err := p.Acquire(holdCtx)
		if errors.Is(err, pool.ErrPoolTimeout) && time.Now().Before(fillBy) {
			continue
		}
		if err != nil {
			check.Detail = err.Error()
			return check
		}
		held = append(held, c)
	}
	start := time.Now()
	_, err := p.Exec(ctx, "SELECT 1")
	waited := time.Since(start)
	out.printf("2. saturated: all %d connections held; a query waited %v and got:\n   %v\n", len(held), waited.Round(time.Millisecond), err)
	var te *pool.TimeoutError
	check.OK = errors.Is(err, pool.ErrPoolTimeout) && errors.As(err, &te) && te.Acquired == int32(len(held))
	check.Detail = fmt.Sprintf("errors.Is(err, pool.ErrPoolTimeout) = %v after %v", errors.Is(err, pool.ErrPoolTimeout), waited.Round(time.Millisecond))
	return check
}

// leak takes a connection and never gives it back, then waits for the report.
func leak(ctx context.Context, p *pool.Pool, threshold time.Duration, logs *logBuffer, out *printer) (*pgxpool.Conn, report.Check) {
	check := report.Check{Name: "leak reported with the stack"}
	c, err := forgetToRelease(ctx, p)
	if err != nil {
		check.Detail = err.Error()
		return nil, check
	}
	deadline := time.Now().Add(threshold + 10*time.Second)
	reported := func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "held longer than the leak threshold") && strings.Contains(line, ".forgetToRelease") {
				return true
			}
		}
		return false
	}
	for !reported() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	check.OK = reported() && strings.Count(logs.String(), "held longer than the leak threshold") == 1
	check.Detail = "one report, naming forgetToRelease"
	out.printf("3. leaked: a connection taken in forgetToRelease was reported after %v (see the log below)\n", threshold)
	return c, check
}

// forgetToRelease is the bug: it takes a connection and does not release it.
func forgetToRelease(ctx context.Context, p *pool.Pool) (*pgxpool.Conn, error) {
	return p.Acquire(ctx)
}

// shutdown closes the pool with a deadline while the leaked connection is
// still held.
func shutdown(ctx context.Context, p *pool.Pool, deadline time.Duration, out *printer) report.Check {
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadline)
	defer cancel()
	start := time.Now()
	err := p.Close(closeCtx)
	took := time.Since(start)
	out.printf("4. shutdown with a %v deadline returned after %v:\n%s\n", deadline, took.Round(time.Millisecond), indent(fmt.Sprint(err)))
	var ce *pool.CloseError
	named := errors.As(err, &ce) && len(ce.Held) == 1 && strings.Contains(ce.Held[0].Stack, ".forgetToRelease")
	return report.Check{
		Name:   "bounded shutdown names the holder",
		OK:     named && took < deadline+time.Second,
		Detail: fmt.Sprintf("returned after %v; the error names forgetToRelease: %v", took.Round(time.Millisecond), named),
	}
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n   ")
}

// printer writes the program's narrative, keeping the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SetupTimeout bounds a Bundle's Ctx: a test that hangs fails after this
// long instead of stalling the whole run. It is a bound, never a
// measurement.
const SetupTimeout = 2 * time.Minute

// Bundle is what most tests start from: a pool on a database of their own
// and a ctx to run statements with.
type Bundle struct {
	// Ctx ends SetupTimeout after Setup, or when the test's function
	// returns (before its cleanups run), whichever comes first. Cleanups
	// that talk to the server use context.WithoutCancel(Ctx).
	Ctx context.Context
	// Pool is on a fresh database, checked for leaked connections and
	// closed in cleanup (see NewPool).
	Pool *pgxpool.Pool
}

// SetupOption changes what Setup prepares.
type SetupOption func(*setupConfig)

type setupConfig struct {
	schema    []string
	configure []func(*pgxpool.Config)
}

// Schema runs sql (one or more statements) on the new database before
// Setup returns. Given more than once, each runs in order.
func Schema(sql string) SetupOption {
	return func(c *setupConfig) { c.schema = append(c.schema, sql) }
}

// Configure changes the pool's config before the pool is created.
func Configure(fs ...func(*pgxpool.Config)) SetupOption {
	return func(c *setupConfig) { c.configure = append(c.configure, fs...) }
}

// Setup gives t a Bundle: a pool on a fresh database (see NewPool) with
// any Schema applied, and a ctx bounded by SetupTimeout. It does not call
// t.Parallel: a test that may run in parallel says so itself.
func Setup(t testing.TB, opts ...SetupOption) *Bundle {
	t.Helper()
	var c setupConfig
	for _, o := range opts {
		o(&c)
	}
	ctx, cancel := context.WithTimeout(t.Context(), SetupTimeout)
	t.Cleanup(cancel)
	pool := NewPool(t, c.configure...)
	for _, sql := range c.schema {
		if sql == "" {
			continue
		}
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("pgtest: schema: %v", err)
		}
	}
	return &Bundle{Ctx: ctx, Pool: pool}
}

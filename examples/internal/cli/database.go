package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/txkit/txkit/internal/devdb"
)

// Database is the database an example runs on, as a service would find
// it: dsn (the -dsn flag) if set, else DATABASE_URL; with neither, a
// throwaway cluster started from the local PostgreSQL server binaries.
// source says which, for the report; stop removes the throwaway cluster
// and is a no-op otherwise.
func Database(ctx context.Context, dsn string) (url, source string, stop func() error, err error) {
	noop := func() error { return nil }
	if dsn != "" {
		return dsn, "-dsn", noop, nil
	}
	if url := os.Getenv("DATABASE_URL"); url != "" {
		return url, "DATABASE_URL", noop, nil
	}
	c, err := devdb.Start(ctx)
	if err != nil {
		return "", "", noop, fmt.Errorf("no -dsn or DATABASE_URL, and no throwaway server: %w", err)
	}
	return c.URL(), "a throwaway cluster from the local PostgreSQL binaries", c.Close, nil
}

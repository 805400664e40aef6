package pgtest

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ExampleDB is the database an example program runs against: the DSN it
// was given, else DATABASE_URL, else a throwaway server from [Resolve].
type ExampleDB struct {
	Pool   *pgxpool.Pool
	Source string // where the server came from, for the program's report
	srv    *Server
}

// OpenExampleDB opens a pool of at most maxConns connections on dsn, or,
// if dsn is empty, on the server Resolve finds from DATABASE_URL, Docker or
// local binaries. Close stops anything it started.
func OpenExampleDB(ctx context.Context, dsn string, maxConns int) (*ExampleDB, error) {
	db := &ExampleDB{Source: "the given DSN"}
	if dsn == "" {
		srv, err := Resolve(ctx, "DATABASE_URL")
		if err != nil {
			return nil, err
		}
		db.srv, dsn, db.Source = srv, srv.URL, serverSource(srv.Kind)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's error quotes the URL, password and all: say what is
		// wrong without it.
		return nil, db.closeWith(errors.New("the database URL does not parse (not shown: it may hold a password)"))
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	if db.Pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, db.closeWith(err)
	}
	if err := db.Pool.Ping(ctx); err != nil {
		return nil, db.closeWith(fmt.Errorf("connecting: %w", err))
	}
	return db, nil
}

// Close closes the pool and stops the server OpenExampleDB started, if any.
func (db *ExampleDB) Close() error { return db.closeWith(nil) }

func (db *ExampleDB) closeWith(err error) error {
	if db.Pool != nil {
		db.Pool.Close()
	}
	if db.srv != nil {
		if cerr := db.srv.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the server: %w", cerr))
		}
	}
	return err
}

func serverSource(kind string) string {
	switch kind {
	case "env":
		return "DATABASE_URL"
	case "docker":
		return "a throwaway Docker container"
	case "binaries":
		return "a throwaway cluster from the local PostgreSQL binaries"
	}
	return kind
}

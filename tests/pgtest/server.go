package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/txkit/txkit/internal/devdb"
)

// Server is a PostgreSQL server the tests or an example may create databases on.
type Server struct {
	// URL connects as a user that may CREATE DATABASE. It may hold a
	// password: never log it.
	URL string
	// Kind says where the server came from: "env", "docker" or "binaries".
	Kind string

	stop func() error
}

// Close stops the server if Resolve started it.
func (s *Server) Close() error {
	if s.stop == nil {
		return nil
	}
	return s.stop()
}

// howToProvide is the advice given when no server can be found.
const howToProvide = `pgtest: no PostgreSQL server for the tests. Provide one of:
  - TEST_DATABASE_URL=postgres://user@host:5432/postgres (a server the tests may create databases on);
  - a running Docker daemon (testcontainers-go starts a postgres container);
  - PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin`

// Resolve finds a server: the URL in envVar if that variable is set, else a
// Docker container, else a throwaway cluster from local binaries. The caller
// owns the returned server and must Close it.
func Resolve(ctx context.Context, envVar string) (*Server, error) {
	if url := os.Getenv(envVar); url != "" {
		return &Server{URL: url, Kind: "env"}, nil
	}
	var errs []error
	if dockerAvailable(ctx) {
		s, err := startContainer(ctx)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	c, err := StartCluster(ctx)
	if err == nil {
		return &Server{URL: c.URL(), Kind: "binaries", stop: c.Close}, nil
	}
	if !errors.Is(err, devdb.ErrNoBinaries) {
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%s\n%w", howToProvide, errors.Join(errs...))
}

// shared is the server this process's tests use, resolved on first use.
var shared struct {
	once   sync.Once
	server *Server
	err    error
}

// SharedServer returns the process-wide test server, resolving it from
// TEST_DATABASE_URL, Docker or local binaries on first use. [Main] stops it.
func SharedServer(ctx context.Context) (*Server, error) {
	shared.once.Do(func() {
		shared.server, shared.err = Resolve(ctx, "TEST_DATABASE_URL")
	})
	return shared.server, shared.err
}

func closeShared() error {
	if shared.server == nil {
		return nil
	}
	closeAdmin()
	return shared.server.Close()
}

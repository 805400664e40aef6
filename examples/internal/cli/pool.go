package cli

import (
	"context"
	"errors"
	"time"

	"github.com/txkit/txkit/pool"
)

// closeTimeout bounds the pool's shutdown: connections still held then are
// named in Close's error instead of hanging the program.
const closeTimeout = 15 * time.Second

// OpenPool opens txkit's pool with opts on the database [Database] finds
// for dsn. pool.Open connects once, so a wrong
// host or password fails here without showing the password; it checks the
// size against the server's limits and bounds every acquire. closeAll
// closes the pool within closeTimeout, then stops a throwaway cluster.
func OpenPool(ctx context.Context, dsn string, opts pool.Options) (p *pool.Pool, source string, closeAll func() error, err error) {
	url, source, stopServer, err := Database(ctx, dsn)
	if err != nil {
		return nil, "", nil, err
	}
	p, err = pool.Open(ctx, url, opts)
	if err != nil {
		return nil, "", nil, errors.Join(err, stopServer())
	}
	closeAll = func() error {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		return errors.Join(p.Close(closeCtx), stopServer())
	}
	return p, source, closeAll, nil
}

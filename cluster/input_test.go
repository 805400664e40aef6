package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/cluster"
	"github.com/txkit/txkit/pool"
	"github.com/txkit/txkit/tests/logtest"
	"github.com/txkit/txkit/tests/pgtest"
	"github.com/txkit/txkit/txn"
)

// Bad input is refused with ErrInvalid, every problem named at once, and
// no password in the error.
func TestBadInputIsInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := cluster.Open(ctx, nil, cluster.Options{})
	require.ErrorIs(t, err, cluster.ErrInvalid)
	_, err = cluster.Open(ctx, []string{""}, cluster.Options{})
	require.ErrorIs(t, err, cluster.ErrInvalid)
	_, err = cluster.New(ctx, nil, cluster.Options{})
	require.ErrorIs(t, err, cluster.ErrInvalid)
	_, err = cluster.New(ctx, []*pool.Pool{nil}, cluster.Options{})
	require.ErrorIs(t, err, cluster.ErrInvalid)
	require.ErrorContains(t, err, "pool 0 is nil")

	_, err = cluster.Open(ctx, []string{"postgres://u@h/db"}, cluster.Options{
		CheckInterval: -1, CheckTimeout: -1, MaxLag: -1, SessionWait: -1, PrimaryWait: -1, MaxLagBytes: -1, Reads: 7,
	})
	require.ErrorIs(t, err, cluster.ErrInvalid)
	for _, field := range []string{"CheckInterval", "CheckTimeout", "MaxLag", "SessionWait", "PrimaryWait", "MaxLagBytes", "Reads"} {
		require.ErrorContains(t, err, field)
	}

	for _, tok := range []string{"x", "0/", "/1", "G/1", "1/2/3", "123456789/0", "0/123456789", " 0/1"} {
		_, err := cluster.ResumeSession(tok)
		require.ErrorIs(t, err, cluster.ErrInvalid, tok)
		_, err = cluster.ParsePosition(tok)
		require.ErrorIs(t, err, cluster.ErrInvalid, tok)
	}

	const secret = "s3cr3t-pa55"
	for _, dsn := range []string{
		"postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=disable&bogus_option==",
		"postgres://u:" + secret + "@127.0.0.1:1,127.0.0.1:2/db?sslmode=disable&connect_timeout=x",
		"host=127.0.0.1,127.0.0.2 port=1 password=" + secret + " sslmode=disable connect_timeout=1",
		"postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=1",
	} {
		_, err := cluster.Open(ctx, []string{dsn}, cluster.Options{})
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret)
	}

	var nilCluster *cluster.Cluster
	err = txn.WithTx(ctx, nilCluster, txn.Options{}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, cluster.ErrInvalid)
	require.ErrorIs(t, nilCluster.Close(ctx), cluster.ErrInvalid)
}

// Positions print and parse as pg_lsn does, and a Session only moves
// forward.
func TestPositionAndSession(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		p, err := cluster.ParsePosition(s)
		require.NoError(t, err)
		require.Equal(t, s, p.String())
	}
	p, err := cluster.ParsePosition("16/b374d848")
	require.NoError(t, err)
	require.Equal(t, cluster.Position(0x16_B374D848), p)

	s := cluster.NewSession(0)
	require.Empty(t, s.Token())
	s.Observe(100)
	s.Observe(50)
	require.Equal(t, cluster.Position(100), s.Position())
	r, err := cluster.ResumeSession(s.Token())
	require.NoError(t, err)
	require.Equal(t, s.Position(), r.Position())
	r, err = cluster.ResumeSession("")
	require.NoError(t, err)
	require.Zero(t, r.Position())
	require.Same(t, s, cluster.SessionFrom(cluster.WithSession(context.Background(), s)))
	require.Nil(t, cluster.SessionFrom(context.Background()))
}

// A closed Cluster refuses work with ErrClosed; Close twice is fine; New
// leaves the caller's pools open.
func TestClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := pool.Open(ctx, pgtest.NewDatabase(t), pool.Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close(ctx)) }()
	c, err := cluster.New(ctx, []*pool.Pool{p}, cluster.Options{})
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx))
	require.NoError(t, c.Close(ctx))
	err = txn.WithTx(ctx, c, txn.Options{}, func(context.Context, pgx.Tx) error { return nil })
	require.ErrorIs(t, err, cluster.ErrClosed)
	_, err = c.Primary(ctx)
	require.ErrorIs(t, err, cluster.ErrClosed)
	require.NoError(t, p.Ping(ctx), "New's pools stay open")

	// With no primary at all, a write waits PrimaryWait and fails.
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	none, err := cluster.Open(cctx, []string{"postgres://postgres@127.0.0.1:1/db?sslmode=disable&connect_timeout=1"}, cluster.Options{})
	require.Error(t, err, "no node reachable")
	require.Nil(t, none)
}

// A node that cannot be reached at Open joins lazily; neither its error
// nor the logs carry the DSN's password.
func TestUnreachableNodeKeepsItsPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const secret = "pa55-w0rd-x"
	var logs logtest.Buffer
	c := open(t, []string{pgtest.NewDatabase(t), "postgres://app:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=1"},
		cluster.Options{CheckInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	eventually(t, "the node is logged down", func() bool { return strings.Contains(logs.String(), "127.0.0.1:1") })
	n := c.Nodes()[1]
	require.False(t, n.Healthy)
	require.NotEmpty(t, n.Err)
	require.NotContains(t, n.Err, secret)
	require.NotContains(t, fmt.Sprintf("%+v", c.Nodes()), secret)
	require.NotContains(t, logs.String(), secret)
	require.NoError(t, txn.WithTx(ctx, c, txn.Options{}, func(context.Context, pgx.Tx) error { return nil }))
}

package pool_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/pool"
)

func TestTLSFloor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dsn := range []string{
		"postgres://u:pw@db.example.com/app",                 // sslmode prefer, libpq's default
		"postgres://u:pw@db.example.com/app?sslmode=disable", //
		"postgres://u:pw@db.example.com/app?sslmode=allow",   //
		"postgres://u:pw@10.1.2.3/app?sslmode=prefer",        //
		"host=db.example.com user=u password=pw sslmode=prefer",
		"postgres://u:pw@127.0.0.1,db.example.com/app?sslmode=disable", // one host is not local
	} {
		_, err := pool.Open(ctx, dsn, pool.Options{})
		require.ErrorIs(t, err, pool.ErrInsecure, pool.Redact(dsn))
		assert.NotContains(t, err.Error(), "pw@")
	}
	for _, dsn := range []string{
		"postgres://u@127.0.0.1:1/app?sslmode=disable",
		"postgres://u@localhost:1/app?sslmode=prefer",
		"postgres://u@[::1]:1/app?sslmode=disable",
		"host=/var/run/postgresql port=1 user=u sslmode=disable",
		"postgres://u@db.example.com/app?sslmode=require",
	} {
		p, err := pool.Open(ctx, dsn, pool.Options{Lazy: true})
		require.NoError(t, err, dsn)
		require.NoError(t, p.Close(ctx))
	}
	p, err := pool.Open(ctx, "postgres://u@db.example.com/app?sslmode=disable", pool.Options{Lazy: true, AllowInsecure: true})
	require.NoError(t, err, "AllowInsecure opts out")
	require.NoError(t, p.Close(ctx))

	_, err = pool.Open(ctx, "postgres://u@db.example.com/app?sslmode=require", pool.Options{Lazy: true, VerifyFull: true})
	require.ErrorIs(t, err, pool.ErrInsecure)
	_, err = pool.Open(ctx, "postgres://u@127.0.0.1/app?sslmode=verify-ca", pool.Options{Lazy: true, VerifyFull: true})
	require.ErrorIs(t, err, pool.ErrInsecure)
}

func TestVerifyFullConnectsWithAVerifiedCertificate(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	dsn := strings.Replace(s.cluster.URL(), "sslmode=disable", "sslmode=verify-full&sslrootcert="+url.QueryEscape(s.caFile), 1)
	p, _ := openOn(t, dsn, pool.Options{VerifyFull: true})
	assert.Equal(t, "verify-full", p.Config().TLS)
	var ssl bool
	require.NoError(t, p.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl))
	assert.True(t, ssl)

	// A certificate from another CA is refused.
	other := strings.Replace(s.cluster.URL(), "sslmode=disable", "sslmode=verify-full", 1) // the system roots
	_, err := pool.Open(ctx, other, pool.Options{VerifyFull: true})
	require.Error(t, err)
}

// TestPasswordNeverShown greps everything logged and returned, in failing
// and working opens, for the password.
func TestPasswordNeverShown(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	const wrong = "Wr0ng-Pa55-4f9e"
	l := &logs{}
	opts := pool.Options{Logger: l.logger(), CaptureStacks: true}
	var shown []string
	show := func(err error) {
		if err == nil {
			return
		}
		shown = append(shown, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
			shown = append(shown, e.Error(), fmt.Sprintf("%+v", e))
		}
		var raw *pgconn.ConnectError
		assert.NotErrorAs(t, err, &raw, "errors.As reached pgconn's ConnectError (it carries the password)")
		var pce *pgconn.ParseConfigError
		assert.NotErrorAs(t, err, &pce, "errors.As reached pgconn's ParseConfigError (it carries the DSN)")
	}

	// A wrong password, in both DSN forms and in ?password=.
	for _, dsn := range []string{
		s.url("app", wrong, "postgres", ""),
		s.url("app", "", "postgres", "password="+wrong),
		fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=postgres sslmode=disable password='%s'", s.cluster.Port(), wrong),
	} {
		_, err := pool.Open(ctx, dsn, opts)
		require.Error(t, err)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "the server's answer is reachable")
		assert.Equal(t, pgerrcode.InvalidPassword, pgErr.Code)
		show(err)
		assert.NotContains(t, pool.Redact(dsn), wrong)
	}
	// An unreachable host, a DSN that does not parse, a refused TLS mode.
	for _, dsn := range []string{
		"postgres://app:" + wrong + "@127.0.0.1:1/postgres?sslmode=disable",
		"postgres://app:" + wrong + "@127.0.0.1:bad/postgres",
		"postgres://app:" + wrong + "@db.example.com/postgres",
		"host=127.0.0.1 password=" + wrong + " port=bad",
	} {
		_, err := pool.Open(ctx, dsn, opts)
		require.Error(t, err)
		show(err)
	}
	// A working open, its config, and what pgxpool keeps.
	var calls atomic.Int32
	withFunc := opts
	withFunc.Password = func(context.Context) (string, error) { calls.Add(1); return appPassword, nil }
	p, _ := openOn(t, s.url("app", "", "postgres", ""), withFunc)
	require.NoError(t, p.Ping(ctx))
	assert.EqualValues(t, 2, calls.Load(), "the Password function runs per new connection (Open's and the pool's)")
	p2, _ := openOn(t, s.url("app", appPassword, "postgres", ""), opts)
	require.NoError(t, p2.Ping(ctx))
	opts.Logger.Info("config", slog.Any("config", p2.Config()))
	shown = append(shown, p2.Config().String(), fmt.Sprintf("%+v", p2.Config()), fmt.Sprintf("%#v", p2.Config()),
		p2.Pgx().Config().ConnString(), fmt.Sprintf("%+v", p2.Pgx().Config().ConnConfig.ConnString()))

	shown = append(shown, l.String())
	all := strings.Join(shown, "\n")
	require.NotEmpty(t, all)
	for _, secret := range []string{wrong, appPassword} {
		assert.NotContains(t, all, secret)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://u:hunter2@h/db":                          "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?sslmode=require&password=hunter2": "postgres://u@h/db?password=xxxxx&sslmode=require",
		"host=h password=hunter2 user=u":                     "host=h password=xxxxx user=u",
		"host=h password = 'hun ter\\'2' user=u":             "host=h password = xxxxx user=u",
		"postgres://u:hun%40ter@h:bad/db":                    "(a connection URL that does not parse; not shown)",
	} {
		assert.Equal(t, want, pool.Redact(dsn), dsn)
	}
}

func TestPassfilePermissions(t *testing.T) {
	s := scratchCluster(t)
	t.Setenv("PGPASSWORD", "")
	ctx := context.Background()
	dir := t.TempDir()
	passfile := filepath.Join(dir, "pgpass")
	line := fmt.Sprintf("127.0.0.1:%d:postgres:app:%s\n", s.cluster.Port(), appPassword)
	require.NoError(t, os.WriteFile(passfile, []byte(line), 0o600))
	dsn := s.url("app", "", "postgres", "passfile="+url.QueryEscape(passfile))

	p, _ := openOn(t, dsn, pool.Options{})
	require.NoError(t, p.Ping(ctx), "a 0600 passfile is used")

	require.NoError(t, os.Chmod(passfile, 0o644))
	_, err := pool.Open(ctx, dsn, pool.Options{})
	require.ErrorIs(t, err, pool.ErrInsecure)
	assert.Contains(t, err.Error(), "group or world access (mode 0644)")
	assert.NotContains(t, err.Error(), appPassword)

	t.Setenv("PGPASSFILE", passfile) // the same check through the environment
	_, err = pool.Open(ctx, s.url("app", "", "postgres", ""), pool.Options{})
	require.ErrorIs(t, err, pool.ErrInsecure)
	// A password given otherwise leaves the passfile unread.
	p2, _ := openOn(t, s.url("app", appPassword, "postgres", ""), pool.Options{})
	require.NoError(t, p2.Ping(ctx))
}

// A connection opened after Open that fails (the rotated password is
// wrong) is reported without pgconn's ConnectError, which carries the
// password, on every path of the Pool.
func TestLaterConnectFailureHidesThePassword(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	const rotated = "R0tated-But-Wr0ng-91aa"
	var calls atomic.Int32
	p, logs := openOn(t, s.url("app", "", "postgres", ""), pool.Options{
		MaxConns: 2,
		Password: func(context.Context) (string, error) {
			if calls.Add(1) <= 2 { // Open's connection and the pool's first
				return appPassword, nil
			}
			return rotated, nil
		},
	})
	held, err := p.Acquire(ctx)
	require.NoError(t, err)
	defer held.Release()

	var errs []error
	_, err = p.Exec(ctx, "SELECT 1")
	errs = append(errs, err)
	var n int
	errs = append(errs, p.QueryRow(ctx, "SELECT 1").Scan(&n))
	_, err = p.Query(ctx, "SELECT 1")
	errs = append(errs, err)
	_, err = p.Acquire(ctx)
	errs = append(errs, err)
	_, err = p.BeginTx(ctx, pgx.TxOptions{})
	errs = append(errs, err)
	errs = append(errs, p.SendBatch(ctx, &pgx.Batch{}).Close())
	for _, err := range errs {
		require.Error(t, err)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, pgerrcode.InvalidPassword, pgErr.Code)
		var raw *pgconn.ConnectError
		assert.NotErrorAs(t, err, &raw, "errors.As reached pgconn's ConnectError (it carries the password)")
		var ours *pool.ConnectError
		require.ErrorAs(t, err, &ours)
		assert.NotContains(t, fmt.Sprintf("%v %+v %#v", err, err, err), rotated)
	}
	assert.NotContains(t, logs.String(), rotated)
}

func TestPasswordFromAFileIsReadPerConnection(t *testing.T) {
	s := scratchCluster(t)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "db-password")
	require.NoError(t, os.WriteFile(file, []byte("wrong-for-now\n"), 0o600))
	p, err := pool.Open(ctx, s.url("app", "", "postgres", ""), pool.Options{Password: pool.PasswordFile(file), Lazy: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close(ctx)) })
	var pgErr *pgconn.PgError
	require.ErrorAs(t, p.Ping(ctx), &pgErr)
	assert.Equal(t, pgerrcode.InvalidPassword, pgErr.Code)

	// The secret is rotated by rewriting the file: the next connection uses it.
	require.NoError(t, os.WriteFile(file, []byte(appPassword+"\n"), 0o600))
	require.NoError(t, p.Ping(ctx))

	require.NoError(t, os.Chmod(file, 0o640))
	p.Reset()
	require.ErrorIs(t, p.Ping(ctx), pool.ErrInsecure)

	t.Setenv("TXKIT_TEST_DB_PASSWORD", appPassword)
	p2, _ := openOn(t, s.url("app", "", "postgres", ""), pool.Options{Password: pool.PasswordEnv("TXKIT_TEST_DB_PASSWORD")})
	require.NoError(t, p2.Ping(ctx))
}

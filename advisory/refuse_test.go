package advisory_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/advisory"
)

// fakeCockroach is a server that greets clients the way CockroachDB does
// (a crdb_version parameter) and answers every simple query with a bare
// command tag. It counts the queries it was sent: a refusal must come
// before any lock statement.
type fakeCockroach struct {
	addr    string
	mu      sync.Mutex
	queries []string
}

func startFakeCockroach(t *testing.T) *fakeCockroach {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeCockroach{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { f.serve(c) })
		}
	})
	return f
}

func (f *fakeCockroach) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	be := pgproto3.NewBackend(c, c)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "13.0.0"})
	be.Send(&pgproto3.ParameterStatus{Name: "crdb_version", Value: "CockroachDB CCL v24.1.0 (fake)"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	tx := byte('I')
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		q, ok := msg.(*pgproto3.Query)
		if !ok {
			return // Terminate, or anything this fake does not speak
		}
		f.mu.Lock()
		f.queries = append(f.queries, q.String)
		f.mu.Unlock()
		word := strings.ToUpper(strings.Fields(q.String + " x")[0])
		switch word {
		case "BEGIN":
			tx = 'T'
		case "COMMIT", "ROLLBACK":
			tx = 'I'
		}
		be.Send(&pgproto3.CommandComplete{CommandTag: []byte(word)})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: tx})
		if be.Flush() != nil {
			return
		}
	}
}

func TestRefusesCockroachDB(t *testing.T) {
	t.Parallel()
	f := startFakeCockroach(t)
	pool, err := pgxpool.New(t.Context(), "postgres://root@"+f.addr+"/db?sslmode=disable")
	require.NoError(t, err)
	defer pool.Close()
	ctx := t.Context()

	_, err = advisory.Acquire(ctx, pool, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrUnsupportedServer)
	require.ErrorContains(t, err, "CockroachDB")
	_, err = advisory.TryAcquire(ctx, pool, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrUnsupportedServer)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	require.ErrorIs(t, advisory.LockTx(ctx, tx, "x", advisory.Options{}), advisory.ErrUnsupportedServer)
	_, err = advisory.TryLockTx(ctx, tx, "x", advisory.Options{})
	require.ErrorIs(t, err, advisory.ErrUnsupportedServer)
	require.NoError(t, tx.Rollback(ctx))

	require.ErrorIs(t, advisory.Lead(ctx, pool, "x", advisory.Options{}, func(context.Context, int64) error { return nil }), advisory.ErrUnsupportedServer)
	require.Equal(t, int32(0), pool.Stat().AcquiredConns())

	f.mu.Lock()
	defer f.mu.Unlock()
	for _, q := range f.queries {
		require.NotContains(t, q, "advisory", "no lock statement reached the server")
	}
}

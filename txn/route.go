package txn

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/isolation"
)

// Router is a Beginner that chooses, for each attempt of WithTx, the pooled
// connection the attempt runs on, and is told how the attempt ended. WithTx
// begins, commits and settles a lost COMMIT on that connection itself, as
// it does for a *pgxpool.Pool, so a Router never makes WithTx answer
// ErrCommitUnknown where a pool would not. A cluster of a primary and
// replicas (package cluster) is one: it sends read-only attempts to a
// replica and the rest to the primary.
//
// BeginTx is used only by code that starts transactions itself; WithTx
// calls Route.
type Router interface {
	Beginner
	// Route returns the connection for one attempt. An error ends the
	// attempt: WithTx runs it again (as its retry policy allows) if the
	// error matches *pgconn.ConnectError or was marked with [RouteAgain],
	// and otherwise returns it.
	Route(ctx context.Context, req RouteRequest) (*Routed, error)
}

// RouteRequest is what a Router is told about the attempt to route.
type RouteRequest struct {
	ReadOnly bool   // the transaction is READ ONLY (Options.ReadOnly)
	Attempt  int    // 1 for the first attempt of a WithTx call
	Name     string // Options.Name
	// Isolation is Options.Isolation: a hot standby refuses SERIALIZABLE,
	// so a Router sends such a transaction to a primary.
	Isolation isolation.Level
}

// Routed is a Router's answer: the connection, and what to do after.
type Routed struct {
	// Conn is the connection the attempt runs on. WithTx releases it
	// after calling Done.
	Conn *pgxpool.Conn
	// CommitPosition asks WithTx to read the server's WAL insert position
	// right after COMMIT, in the same write as COMMIT (a fast-path call of
	// pg_current_wal_insert_lsn; on a server that reports no version, one
	// more round trip). The position is at or after the commit record. It
	// is read for read-write transactions only, and not where COMMIT goes
	// alone (servers before PostgreSQL 13, CockroachDB, YugabyteDB):
	// AttemptEnd.Position is then 0.
	CommitPosition bool
	// Done, if not nil, is called once when the attempt has ended, before
	// Conn is released. If it returns true for an attempt that did not
	// commit, WithTx runs the transaction again (as its retry policy
	// allows): a Router says so when the failure shows that nothing can
	// have committed and another node may take the work (the node refused
	// the write as a standby, 25006).
	Done func(AttemptEnd) (retry bool)
}

// AttemptEnd is how an attempt ended, as WithTx tells a Router.
type AttemptEnd struct {
	// Committed is true when the transaction certainly committed.
	Committed bool
	// Position is the WAL position read after COMMIT when CommitPosition
	// was asked and the answer arrived; 0 otherwise.
	Position uint64
	// Err is the attempt's error; nil when it committed.
	Err error
}

// rerouteError is an attempt's error that the Router says another attempt
// may run again elsewhere: nothing committed.
type rerouteError struct{ err error }

func (e *rerouteError) Error() string { return e.err.Error() }
func (e *rerouteError) Unwrap() error { return e.err }

// RouteAgain marks err, an error of Router.Route or the reason a Router's
// Done asks for a retry, as one after which nothing can have committed and
// another attempt may succeed: WithTx runs the transaction again, as its
// retry policy allows. errors.Is and errors.As see err through it.
func RouteAgain(err error) error {
	if err == nil {
		return nil
	}
	return &rerouteError{err: err}
}

func isRerouted(err error) bool {
	var e *rerouteError
	return errors.As(err, &e)
}

// beginRouted asks r for the attempt's connection and begins on it.
func beginRouted(ctx context.Context, r Router, txo pgx.TxOptions, req RouteRequest) (begun, error) {
	rt, err := r.Route(ctx, req)
	if err != nil {
		return begun{}, err
	}
	if rt == nil || rt.Conn == nil {
		return begun{}, errors.New("txn: the Router gave no connection")
	}
	c := rt.Conn
	b := begun{conn: c.Conn(), routed: rt}
	if canBeLazy(c.Conn()) {
		b.lazy = true
	} else {
		tx, err := beginAcquired(ctx, c.Conn(), txo)
		if err != nil {
			return begun{}, b.finish(RolledBack, err)
		}
		b.tx = tx
	}
	if rt.CommitPosition && !req.ReadOnly {
		b.position = new(commitPosition)
	}
	return b, nil
}

// finish tells the Router how the attempt ended and releases its
// connection. It returns err, marked for a retry if the Router asked for
// one.
func (b *begun) finish(outcome Outcome, err error) error {
	rt := b.routed
	if rt == nil {
		b.done()
		return err
	}
	b.routed = nil
	retry := false
	if rt.Done != nil {
		end := AttemptEnd{Committed: outcome == Committed && err == nil, Err: err}
		if end.Committed && b.position != nil && b.position.received {
			end.Position = b.position.lsn
		}
		retry = rt.Done(end)
	}
	rt.Conn.Release()
	if retry && outcome != Committed && outcome != CommitUnknown {
		return RouteAgain(err)
	}
	return err
}

// commitPosition is the WAL position read after COMMIT.
type commitPosition struct {
	received bool
	lsn      uint64
}

// walInsertLSNOID is pg_current_wal_insert_lsn's OID, fixed in the catalog
// (pg_proc.dat) since PostgreSQL 10. TestFastPathOIDMatchesTheCatalog
// checks it against the server.
const walInsertLSNOID = 2852

// lsnCall is the fast-path call of pg_current_wal_insert_lsn, with its
// pg_lsn answer in binary: 8 bytes.
var lsnCall = &pgproto3.FunctionCall{Function: walInsertLSNOID, ResultFormatCode: 1}

// The insert position, not pg_current_wal_lsn's write position: with
// synchronous_commit off, COMMIT returns before its record is written, and
// the write position may still be short of it. The insert position is
// past the commit record once COMMIT has answered.

// readPosition reads the position call's answer through its
// ReadyForQuery.
func readPosition(ctx context.Context, pc *pgconn.PgConn, pos *commitPosition) error {
	var lsn uint64
	ok := false
	for {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.FunctionCallResponse:
			if len(m.Result) == 8 {
				lsn, ok = binary.BigEndian.Uint64(m.Result), true
			}
		case *pgproto3.ReadyForQuery:
			pos.lsn, pos.received = lsn, ok
			return nil
		}
	}
}

// readPositionQuery reads the position with a query, for servers without
// the fast path.
func readPositionQuery(ctx context.Context, pc *pgconn.PgConn, pos *commitPosition) {
	r := pc.ExecParams(ctx, "SELECT pg_current_wal_insert_lsn()", nil, nil, nil, []int16{1}).Read()
	if r.Err == nil && len(r.Rows) == 1 && len(r.Rows[0][0]) == 8 {
		pos.lsn, pos.received = binary.BigEndian.Uint64(r.Rows[0][0]), true
	}
}

// commitOn sends COMMIT with the transaction-id request ahead of it, and
// the position request after it when pos is not nil: on the fast path in
// the same write as COMMIT, else as one more query once COMMIT has
// answered.
func commitOn(ctx context.Context, pc *pgconn.PgConn, pos *commitPosition) (xidAnswer, pgconn.CommandTag, error) {
	if useFastPath(pc) {
		return fastPathCommit(ctx, pc, pos)
	}
	x, tag, err := pipelineCommit(ctx, pc)
	if err == nil && pos != nil {
		readPositionQuery(ctx, pc, pos)
	}
	return x, tag, err
}

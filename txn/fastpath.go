package txn

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The transaction id travels ahead of COMMIT as a fast-path function call
// (the protocol's FunctionCall message) of pg_current_xact_id_if_assigned,
// not as a query: the server runs the function by OID with no parse, plan
// or portal, and answers it with ReadyForQuery, which flushes the xid to
// the client before COMMIT is read. COMMIT follows in the same write as a
// simple query. The extended-protocol query this replaces cost a
// read-write transaction 10 to 18% of its time; the call costs about 1%.

// xactIDIfAssignedOID is pg_current_xact_id_if_assigned's OID: a built-in
// function's OID is fixed in the catalog (pg_proc.dat) from PostgreSQL 13,
// where the function appeared. TestFastPathOIDMatchesTheCatalog checks it
// against the server.
const xactIDIfAssignedOID = 5060

// xidCall is the fast-path call of pg_current_xact_id_if_assigned, with
// its xid8 answer in binary: 8 bytes, or NULL when no id is assigned.
var xidCall = &pgproto3.FunctionCall{Function: xactIDIfAssignedOID, ResultFormatCode: 1}

// commitQuery is COMMIT as a simple query. Send encodes a message into the
// write buffer at once and never changes it, so one serves every call.
var commitQuery = &pgproto3.Query{String: commitSQL}

// fastPathMinVersion is the first server major version that has
// pg_current_xact_id_if_assigned.
const fastPathMinVersion = 13

// useFastPath reports whether the server pc talks to has the function
// under xactIDIfAssignedOID. A server that reports no version gets the
// pipelined query; older ones, and servers that are not PostgreSQL, send
// COMMIT alone (see unresolvable).
func useFastPath(pc *pgconn.PgConn) bool {
	return majorVersion(pc.ParameterStatus("server_version")) >= fastPathMinVersion
}

// majorVersion is the leading number of a server_version such as
// "15.20 (Debian 15.20-0+deb12u1)"; 0 when there is none.
func majorVersion(v string) int {
	n := 0
	for i := 0; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		n = n*10 + int(v[i]-'0')
		if n > 1_000_000 {
			return 0
		}
	}
	return n
}

// answerLostError is a failure to read an answer after COMMIT was written.
// pgconn calls any failed receive safe to retry; after COMMIT left the
// client it is not, so this error says so, and the outcome is asked of the
// server.
type answerLostError struct{ err error }

func (e *answerLostError) Error() string     { return "txn: reading COMMIT's answer: " + e.err.Error() }
func (e *answerLostError) Unwrap() error     { return e.err }
func (e *answerLostError) SafeToRetry() bool { return false }

// fastPathCommit writes the transaction-id call and COMMIT at once and
// reads their answers in order: the xid (or the call's refusal) and its
// ReadyForQuery, then COMMIT's command tag or error and its ReadyForQuery.
// It returns what the two together say about the commit, as
// pipelineCommit does. Whenever the exchange fails part way, the connection
// is closed, so that the pool never reuses it.
//
// With pos not nil the position call follows COMMIT in the same write, and
// its answer is read into pos after COMMIT's; losing it does not change
// COMMIT's outcome.
func fastPathCommit(ctx context.Context, pc *pgconn.PgConn, pos *commitPosition) (x xidAnswer, tag pgconn.CommandTag, err error) {
	f := pc.Frontend()
	f.Send(xidCall)
	f.Send(commitQuery)
	if pos != nil {
		f.Send(lsnCall)
	}
	if err := f.Flush(); err != nil {
		// pgproto3's error says whether any byte left (SafeToRetry).
		closeConn(ctx, pc)
		return x, tag, fmt.Errorf("txn: sending COMMIT: %w", err)
	}
	x, xidErr, err := readFastPathXID(ctx, pc)
	if err != nil {
		closeConn(ctx, pc)
		return x, tag, err
	}
	tag, commitErr, err := readSimpleCommit(ctx, pc)
	if err != nil {
		closeConn(ctx, pc)
		return x, tag, err
	}
	if pos != nil && readPosition(ctx, pc, pos) != nil {
		// COMMIT's answer arrived; only the position is lost, and the
		// connection with it.
		closeConn(ctx, pc)
	}
	if commitErr != nil {
		return x, tag, commitErr
	}
	return x, tag, commitError(tag, xidErr)
}

// readFastPathXID reads the function call's answer through its
// ReadyForQuery. A refusal of severity ERROR (25P02 in a failed
// transaction) is xidErr, and COMMIT still gets its answer; err is any
// other failure, after which the connection is unusable.
func readFastPathXID(ctx context.Context, pc *pgconn.PgConn) (x xidAnswer, xidErr, err error) {
	for {
		msg, err := receive(ctx, pc)
		if err != nil {
			return x, xidErr, err
		}
		switch m := msg.(type) {
		case *pgproto3.FunctionCallResponse:
			if m.Result != nil {
				if len(m.Result) != 8 {
					return x, xidErr, &answerLostError{fmt.Errorf("unexpected xid %x", m.Result)}
				}
				x.xid, x.assigned = binary.BigEndian.Uint64(m.Result), true
			}
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(m)
			if !serverRefused(pgErr) {
				return x, xidErr, pgErr
			}
			xidErr = pgErr
		case *pgproto3.ReadyForQuery:
			x.received = true
			if xidErr != nil {
				x.xid, x.assigned = 0, false
			}
			return x, xidErr, nil
		}
	}
}

// readSimpleCommit reads COMMIT's answer through its ReadyForQuery: the
// command tag ("COMMIT", or "ROLLBACK" in a failed transaction), or the
// server's error (a deferred constraint, a serialization failure) as
// commitErr. err is a failure to read, or a FATAL error, after which the
// outcome must be asked of the server.
func readSimpleCommit(ctx context.Context, pc *pgconn.PgConn) (tag pgconn.CommandTag, commitErr, err error) {
	for {
		msg, err := receive(ctx, pc)
		if err != nil {
			return tag, commitErr, err
		}
		switch m := msg.(type) {
		case *pgproto3.CommandComplete:
			tag = commandTag(m.CommandTag)
		case *pgproto3.ErrorResponse:
			pgErr := pgconn.ErrorResponseToPgError(m)
			if !serverRefused(pgErr) {
				return tag, commitErr, pgErr
			}
			commitErr = pgErr
		case *pgproto3.ReadyForQuery:
			return tag, commitErr, nil
		}
	}
}

// The two answers COMMIT can have, made once.
var (
	commitTag   = pgconn.NewCommandTag("COMMIT")
	rollbackTag = pgconn.NewCommandTag("ROLLBACK")
)

// commandTag is COMMIT's command tag, without copying the usual ones: the
// message's bytes belong to the connection's read buffer.
func commandTag(b []byte) pgconn.CommandTag {
	switch string(b) {
	case "COMMIT":
		return commitTag
	case "ROLLBACK":
		return rollbackTag
	}
	return pgconn.NewCommandTag(string(b))
}

// receive is pgconn's ReceiveMessage with its error marked as not safe to
// retry.
func receive(ctx context.Context, pc *pgconn.PgConn) (pgproto3.BackendMessage, error) {
	msg, err := pc.ReceiveMessage(ctx)
	if err != nil {
		return nil, &answerLostError{err}
	}
	return msg, nil
}

// closeConn closes a connection left in an unknown protocol state.
func closeConn(ctx context.Context, pc *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = pc.Close(ctx)
}

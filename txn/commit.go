package txn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgerrcode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/internal/serverkind"
	"github.com/txkit/txkit/isolation"
	"github.com/txkit/txkit/retry"
)

// commitResult is what WithTx knows after sending COMMIT.
type commitResult struct {
	outcome Outcome
	err     error
	// resolved is set when the answer was lost and the outcome was asked
	// of the server afterwards.
	resolved *CommitResolvedData
}

// xidQuery asks for the transaction id without assigning one: a read-only
// transaction has none to resolve, and forcing one would cost an xid and
// fail on a hot standby.
const xidQuery = "SELECT pg_current_xact_id_if_assigned()::text"

// commit ends the attempt's transaction with COMMIT. Where it can reach the
// connection it sends, in one write, a request for the transaction id and
// COMMIT: a fast-path call of pg_current_xact_id_if_assigned and a simple
// COMMIT query (see fastpath.go), or, where the server reports no version,
// the xid query, a Sync, COMMIT and a Sync. Either way the server answers the
// request with ReadyForQuery, flushing the xid, before it reads COMMIT, so
// if the connection breaks during COMMIT WithTx still knows which
// transaction to ask about.
//
// A READ ONLY transaction can write nothing durable (only temporary tables,
// which die with the session), so it has no transaction id to resolve and
// skips the xid query. A lost answer to its COMMIT is a success only where
// COMMIT cannot refuse it (readOnlySafe); otherwise the reads it returned
// may be ones the server rejected, and it runs again.
func commit(ctx context.Context, b *begun, opts *Options) commitResult {
	if opts.ReadOnly {
		res := commitPlain(ctx, b.tx)
		if res.outcome != CommitUnknown {
			return res
		}
		if readOnlySafe(opts) {
			return commitResult{outcome: Committed, resolved: &CommitResolvedData{Outcome: Committed}}
		}
		err := &CommitUnknownError{Cause: errors.Unwrap(res.err), rerun: true,
			detail: "a READ ONLY transaction that may be SERIALIZABLE and is not DEFERRABLE can still fail at COMMIT; it can run again"}
		return commitResult{outcome: CommitUnknown, err: err, resolved: &CommitResolvedData{Outcome: CommitUnknown, Err: err}}
	}
	if b.conn == nil {
		return commitPlain(ctx, b.tx)
	}
	if why := unresolvable(b.conn.PgConn()); why != "" {
		res := commitPlain(ctx, b.tx)
		var unknown *CommitUnknownError
		if errors.As(res.err, &unknown) {
			unknown.detail = why
		}
		return res
	}
	wasClosed := b.conn.IsClosed()
	cctx, cancel := commitContext(ctx)
	x, err := tracedCommit(cctx, b.conn, b.position)
	cancel()
	// With the transaction id's answer in hand COMMIT was certainly
	// written, so a "conn closed" error after it is a lost answer to ask
	// about. With nothing received, pgconn's word that nothing was sent is
	// taken, as it was before pgconn's answer could be checked.
	if res, ok := settled(err, wasClosed || !x.received); ok {
		return res
	}
	b.leaveTurn() // settling the outcome competes with no one: others may run
	return resolveCommit(ctx, b.conn.Config(), b.conn.PgConn().PID(), x, err)
}

// unresolvable says why a lost COMMIT answer on pc's server cannot be
// asked about, or "" when it can. PostgreSQL before 13 has neither
// pg_current_xact_id_if_assigned nor pg_xact_status. CockroachDB and
// YugabyteDB speak the protocol, but their transactions are not
// PostgreSQL's: CockroachDB has no pg_xact_status and takes no fast-path
// call, and YugabyteDB's transaction ids cannot be asked about. There
// COMMIT goes alone, as pgx sends it, and a lost answer is
// ErrCommitUnknown. A server that reports no version is taken to be a
// recent PostgreSQL (the pipelined xid query).
func unresolvable(pc *pgconn.PgConn) string {
	switch kind := serverkind.Of(pc); kind {
	case serverkind.PostgreSQL:
		if v := majorVersion(pc.ParameterStatus("server_version")); v != 0 && v < fastPathMinVersion {
			return "PostgreSQL " + strconv.Itoa(v) + " cannot be asked about a transaction's outcome; 13 or later can"
		}
		return ""
	default:
		return kind.String() + " cannot be asked about a transaction's outcome"
	}
}

// settled classifies COMMIT's result when it needs no question to the
// server: success, the server's refusal, or a failure before anything was
// sent (the broken connection ends the transaction there). ok is false
// when the answer was lost. trustClosed is sentNothing's.
func settled(err error, trustClosed bool) (res commitResult, ok bool) {
	switch {
	case err == nil:
		return commitResult{outcome: Committed}, true
	case serverRefused(err):
		return commitResult{outcome: RolledBack, err: err}, true
	case sentNothing(err, trustClosed):
		return commitResult{outcome: RolledBack, err: &connLostError{when: "before COMMIT was sent", err: err}}, true
	}
	return commitResult{}, false
}

// sentNothing reports whether err shows that COMMIT never left the client.
// pgconn.SafeToRetry alone does not: pgconn also calls its "conn closed"
// error (pgconn.ErrConnClosed) safe when it closed the connection itself
// because reading the answer failed, after COMMIT was written and perhaps
// committed. That error is taken as safe only where trustClosed says so:
// the connection was already closed when COMMIT began, or, for the
// pipelined COMMIT, nothing at all came back.
func sentNothing(err error, trustClosed bool) bool {
	if !pgconn.SafeToRetry(err) {
		return false
	}
	return trustClosed || !errors.Is(err, pgconn.ErrConnClosed)
}

// commitGrace is how long past ctx's deadline WithTx waits for COMMIT's
// answer. Once COMMIT is on its way, giving up on the answer cannot stop
// it; it only turns a known outcome into ErrCommitUnknown.
const commitGrace = 2 * time.Second

// commitContext is ctx for sending COMMIT and reading its answer: not
// cancelled with ctx, and ending commitGrace after ctx's deadline, if any.
func commitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Done() == nil {
		return ctx, func() {} // never cancelled: nothing to detach from
	}
	detached := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(detached, deadline.Add(commitGrace))
	}
	return detached, func() {}
}

// readOnlySafe reports whether COMMIT of a READ ONLY transaction run with
// opts cannot fail: below SERIALIZABLE nothing is checked at COMMIT, and a
// SERIALIZABLE READ ONLY DEFERRABLE transaction runs on a safe snapshot.
// A SERIALIZABLE READ ONLY transaction that is not DEFERRABLE can still be
// refused with 40001 at COMMIT (its reads were part of a dangerous
// structure). With the level left to the server, it may be SERIALIZABLE.
func readOnlySafe(opts *Options) bool {
	switch opts.Isolation {
	case isolation.ReadCommitted, isolation.RepeatableRead:
		return true
	case isolation.Serializable:
		return opts.Deferrable
	}
	return false
}

// serverRefused reports whether err is the server's definite answer that
// the transaction did not commit: COMMIT answering ROLLBACK, or an error of
// severity ERROR. A FATAL or PANIC error is not: it ends the session, and a
// backend terminated while committing sends FATAL after the commit is
// durable.
func serverRefused(err error) bool {
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	severity := pgErr.SeverityUnlocalized
	if severity == "" {
		severity = pgErr.Severity
	}
	return severity == "ERROR"
}

// commitPlain commits through pgx for Beginners whose connection WithTx
// cannot reach; a lost answer cannot be resolved there.
func commitPlain(ctx context.Context, tx pgx.Tx) commitResult {
	wasClosed := false
	if c := tx.Conn(); c != nil {
		wasClosed = c.IsClosed()
	}
	cctx, cancel := commitContext(ctx)
	err := tx.Commit(cctx)
	cancel()
	if res, ok := settled(err, wasClosed); ok {
		return res
	}
	return commitResult{outcome: CommitUnknown, err: &CommitUnknownError{Cause: err}}
}

// xidAnswer is what the xid query returned.
type xidAnswer struct {
	received bool   // the answer arrived
	assigned bool   // the transaction had an xid (it wrote something)
	xid      uint64 // the xid, when assigned
}

// pipelineCommit sends the xid query and COMMIT in one write and reads
// their answers: the transaction id, then COMMIT's command tag, then what
// the two together say about the commit. tag is COMMIT's command tag, when
// it arrived. On any failure to read, the pipeline is closed and the
// answers read so far are returned with the error.
func pipelineCommit(ctx context.Context, pc *pgconn.PgConn) (x xidAnswer, tag pgconn.CommandTag, err error) {
	p, err := sendCommit(ctx, pc)
	if err != nil {
		return x, tag, err
	}
	x, xidErr, err := readXID(p)
	if err != nil {
		_ = p.Close()
		return x, tag, err
	}
	tag, err = readCommitTag(p)
	if err != nil {
		_ = p.Close()
		return x, tag, err
	}
	if err := p.Close(); err != nil {
		return x, tag, err
	}
	return x, tag, commitError(tag, xidErr)
}

// sendCommit writes, at once, the xid query, a Sync, COMMIT and a Sync.
func sendCommit(ctx context.Context, pc *pgconn.PgConn) (*pgconn.Pipeline, error) {
	p := pc.StartPipeline(ctx)
	p.SendQueryParams(xidQuery, nil, nil, nil, nil)
	p.SendPipelineSync()
	p.SendQueryParams("commit", nil, nil, nil, nil)
	if err := p.Sync(); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

// readXID reads the xid query's answer, then its Sync. The server may
// refuse the query (25P02 if the transaction had already failed), at Parse
// or at Execute: that refusal is xidErr, and COMMIT, past the Sync, still
// gets its answer. err is any other failure; the pipeline is then unusable.
func readXID(p *pgconn.Pipeline) (x xidAnswer, xidErr, err error) {
	r, err := nextRows(p)
	if err != nil {
		if !serverRefused(err) {
			return x, nil, err
		}
		xidErr = err
	}
	x.received = true
	if xidErr == nil && len(r.Rows) == 1 && r.Rows[0][0] != nil {
		x.xid, err = strconv.ParseUint(string(r.Rows[0][0]), 10, 64)
		if err != nil {
			return x, xidErr, fmt.Errorf("txn: unexpected xid %q: %w", r.Rows[0][0], err)
		}
		x.assigned = true
	}
	if _, err := p.GetResults(); err != nil {
		return x, xidErr, err
	}
	return x, xidErr, nil
}

// nextRows reads the next query's answer in full.
func nextRows(p *pgconn.Pipeline) (*pgconn.Result, error) {
	res, err := p.GetResults()
	if err != nil {
		return nil, err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return nil, fmt.Errorf("txn: unexpected pipeline result %T", res)
	}
	r := rr.Read()
	return r, r.Err
}

// readCommitTag reads COMMIT's answer: "COMMIT", or "ROLLBACK" if the
// transaction had already failed.
func readCommitTag(p *pgconn.Pipeline) (pgconn.CommandTag, error) {
	res, err := p.GetResults()
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return pgconn.CommandTag{}, fmt.Errorf("txn: unexpected pipeline result %T", res)
	}
	return rr.Close()
}

// commitError classifies a COMMIT whose answers all arrived: nil for a
// commit, pgx.ErrTxCommitRollback (with the xid query's refusal, unless
// that was only 25P02) when COMMIT answered ROLLBACK. A refused xid query
// followed by "COMMIT" is returned as it is.
func commitError(tag pgconn.CommandTag, xidErr error) error {
	if tag.String() != "ROLLBACK" {
		return xidErr
	}
	if xidErr != nil && retry.SQLState(xidErr) != pgerrcode.InFailedSQLTransaction {
		return fmt.Errorf("%w: the transaction-id query failed: %w", pgx.ErrTxCommitRollback, xidErr)
	}
	return pgx.ErrTxCommitRollback
}

// Time allowed to settle a lost COMMIT, and how often to ask while the old
// backend is still finishing.
const (
	resolveTimeout      = 10 * time.Second
	resolveAfterCancel  = 2 * time.Second
	resolvePollInterval = 20 * time.Millisecond
)

// resolveCommit asks the server, on a new connection, what became of the
// transaction whose COMMIT answer was lost.
func resolveCommit(ctx context.Context, cfg *pgx.ConnConfig, pid uint32, x xidAnswer, cause error) commitResult {
	d := &CommitResolvedData{XID: x.xid}
	unknown := func(detail string) commitResult {
		d.Outcome = CommitUnknown
		err := &CommitUnknownError{XID: d.XID, Status: d.Status, Cause: cause, detail: detail}
		d.Err = err
		return commitResult{outcome: CommitUnknown, err: err, resolved: d}
	}
	if !x.received {
		return unknown("the transaction id was not received")
	}
	if !x.assigned {
		// No transaction id before COMMIT: nothing was written, but a
		// notification (NOTIFY, pg_notify) gets its id while committing,
		// so there is nothing to ask about, and success would claim a
		// notification that may never have been sent. Nothing durable
		// depends on this commit, so running the transaction again is
		// safe; the retry loop does, or reports the outcome unknown.
		d.Outcome = CommitUnknown
		err := &CommitUnknownError{Cause: cause, detail: "the transaction had no transaction id to ask about; it can run again", rerun: true}
		d.Err = err
		return commitResult{outcome: CommitUnknown, err: err, resolved: d}
	}
	status, err := xactStatus(ctx, cfg, pid, x.xid)
	d.Status = status
	switch {
	case err != nil:
		return unknown("asking the server failed: " + err.Error())
	case status == "committed":
		d.Outcome = Committed
		return commitResult{outcome: Committed, resolved: d}
	case status == "aborted":
		d.Outcome = RolledBack
		return commitResult{outcome: RolledBack, resolved: d,
			err: &connLostError{when: "during COMMIT (the server reports the transaction aborted)", err: cause}}
	case status == "":
		return unknown("the server no longer knows the transaction")
	}
	return unknown("the transaction was still " + status)
}

// xactStatus returns pg_xact_status for xid, ending the old backend if the
// transaction is still in progress so that its fate is settled, and waiting
// until it is.
func xactStatus(ctx context.Context, cfg *pgx.ConnConfig, pid uint32, xid uint64) (string, error) {
	parent, budget := ctx, resolveTimeout
	if ctx.Err() != nil {
		parent, budget = context.WithoutCancel(ctx), resolveAfterCancel
	}
	ctx, cancel := context.WithTimeout(parent, budget)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	xidText := strconv.FormatUint(xid, 10)
	// pg_stat_activity shows the 32-bit xid without its epoch.
	xid32 := strconv.FormatUint(xid&0xFFFFFFFF, 10)
	terminated := false
	for {
		var status *string
		if err := conn.QueryRow(ctx, "SELECT pg_xact_status($1::xid8)", xidText).Scan(&status); err != nil {
			return "", err
		}
		if status == nil {
			return "", nil
		}
		if *status != "in progress" {
			return *status, nil
		}
		if !terminated {
			// The old backend has not finished: it may still be reading
			// COMMIT, or waiting on a socket that is gone. End it, so the
			// transaction commits (if COMMIT was already being processed)
			// or aborts, and nothing is left to decide later.
			_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE pid = $1 AND backend_xid::text = $2`, int64(pid), xid32)
			if err != nil && retry.SQLState(err) != pgerrcode.InsufficientPrivilege {
				return *status, err
			}
			terminated = true
		}
		select {
		case <-ctx.Done():
			return *status, nil
		case <-time.After(resolvePollInterval):
		}
	}
}

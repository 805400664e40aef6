package advisory

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// cancelGrace is how long a lock statement may take to return after a
// cancel request was sent (or could not be) before its connection is
// closed instead. A cancel request answered by the server ends the wait in
// a millisecond or two; the grace only matters when the server cannot be
// reached.
const cancelGrace = 5 * time.Second

// interruptible runs a statement that may wait for a lock on pc so that
// cancelling ctx interrupts the wait with a cancel request, leaving the
// connection usable, instead of pgx's default of closing the connection.
// run gets a ctx that is only cancelled, closing the connection, if the
// cancel request could not be sent or did not end the statement within
// cancelGrace.
//
// cancelSent reports whether a cancel request was sent. If it was, and the
// statement did not fail with query_canceled (57014), the cancel did not
// land in this statement and may yet land in a later one: PostgreSQL
// itself signals the backend before it answers the request and drops a
// cancel that arrives between statements, but a pooler in between relays
// the request on its own schedule. The caller must then not hand the
// connection to anyone else, whose next statement it could cancel.
func interruptible(ctx context.Context, pc *pgconn.PgConn, run func(ctx context.Context) error) (cancelSent bool, err error) {
	qctx, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	finished := make(chan struct{})
	handled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(handled)
		cctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
		defer cancel()
		if pc.CancelRequest(cctx) != nil {
			kill()
			return
		}
		t := time.NewTimer(cancelGrace)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			kill()
		}
	})
	err = run(qctx)
	close(finished)
	if stop() {
		return false, err
	}
	// The AfterFunc ran: wait until its cancel request has been answered,
	// so that the server has signalled the backend before the caller uses
	// the connection again.
	<-handled
	return true, err
}

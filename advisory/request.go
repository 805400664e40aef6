package advisory

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/txkit/txkit/internal/serverkind"
)

// request is one lock call: what to lock, how, and since when. Acquire,
// TryAcquire, LockTx and TryLockTx each make one; the lock statement, the
// error path and the observer events all read it.
type request struct {
	name  string
	k     key
	o     Options
	kind  Kind
	try   bool // do not wait
	start time.Time
}

// newRequest checks the input of a lock call and starts its clock.
func newRequest(name string, o Options, kind Kind, try bool) (*request, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	k, err := makeKey(o.Namespace, name)
	if err != nil {
		return nil, err
	}
	return &request{name: name, k: k, o: o, kind: kind, try: try, start: time.Now()}, nil
}

// observeStart reports the start of the call to the Observer, if any, and
// returns the ctx it gives back.
func (r *request) observeStart(ctx context.Context) context.Context {
	o, ok := r.o.Observer.(AcquireStartObserver)
	if !ok {
		return ctx
	}
	return o.AcquireStart(ctx, AcquireStartData{
		Name: r.name, Namespace: r.o.Namespace, Kind: r.kind, Shared: r.o.Shared, Try: r.try,
	})
}

// observeEnd reports how the call ended to the Observer, if any. token and
// pid are those of a session lock taken.
func (r *request) observeEnd(ctx context.Context, acquired bool, err error, token int64, pid uint32) {
	o, ok := r.o.Observer.(AcquireEndObserver)
	if !ok {
		return
	}
	o.AcquireEnd(ctx, AcquireEndData{
		Name: r.name, Namespace: r.o.Namespace, Kind: r.kind, Shared: r.o.Shared, Try: r.try,
		Acquired: acquired, Wait: time.Since(r.start), Token: token, PID: pid, Err: err,
	})
}

// checkServer refuses a server whose advisory lock functions do not lock.
// CockroachDB says what it is in its startup parameters, so this costs no
// round trip.
func checkServer(pc *pgconn.PgConn) error {
	if serverkind.Of(pc) == serverkind.CockroachDB {
		return &serverError{what: "CockroachDB " + pc.ParameterStatus("crdb_version")}
	}
	return nil
}

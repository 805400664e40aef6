package txn

import (
	"context"
	"log/slog"

	"github.com/txkit/txkit/internal/logkeys"
)

// NewSlogObserver returns an Observer that implements every event
// interface and logs to logger: retries at Info; transactions that ended
// in error and COMMIT answers that were lost but resolved (or run again)
// at Warn; unresolved COMMITs, leaks and callback panics at Error;
// successful ends at Debug. A nil logger discards everything.
//
// Messages start with "txn: " and use the keys every txkit slog observer
// shares: the transaction's Name under "name", an error's text under
// "error", then "attempt", "attempts", "duration", "wait", "outcome",
// "sqlstate", "xid", "status", "open", "panic" and "stack" (see the package
// documentation). They never carry a connection string or password; an
// error from failing to connect is logged as pgx words it, naming the
// user, database, host and port.
func NewSlogObserver(logger *slog.Logger) Observer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return slogObserver{l: logger}
}

type slogObserver struct {
	l *slog.Logger
}

// TxStart logs nothing: TxEnd says all there is to say about a call.
func (o slogObserver) TxStart(ctx context.Context, _ TxStartData) context.Context { return ctx }

func (o slogObserver) TxRetry(ctx context.Context, d TxRetryData) {
	o.l.LogAttrs(ctx, slog.LevelInfo, logkeys.TxnPrefix+"retrying transaction",
		slog.String(logkeys.Name, d.Name), slog.Int(logkeys.Attempt, d.Attempt),
		slog.String(logkeys.SQLState, d.SQLState), slog.Duration(logkeys.Wait, d.Wait), logkeys.Err(d.Err))
}

// TxAttemptStart logs nothing: an attempt that fails is logged by TxRetry
// or TxEnd.
func (o slogObserver) TxAttemptStart(ctx context.Context, _ TxAttemptStartData) context.Context {
	return ctx
}

// TxAttemptEnd logs nothing: a failed attempt that is run again is logged
// by TxRetry, and the last attempt by TxEnd.
func (o slogObserver) TxAttemptEnd(context.Context, TxAttemptEndData) {}

func (o slogObserver) TxEnd(ctx context.Context, d TxEndData) {
	level := slog.LevelDebug
	if d.Err != nil {
		level = slog.LevelWarn
	}
	o.l.LogAttrs(ctx, level, logkeys.TxnPrefix+"transaction ended",
		slog.String(logkeys.Name, d.Name), slog.String(logkeys.Outcome, d.Outcome.String()),
		slog.Int(logkeys.Attempts, d.Attempts), slog.Duration(logkeys.Duration, d.Duration), logkeys.Err(d.Err))
}

func (o slogObserver) CommitResolved(ctx context.Context, d CommitResolvedData) {
	level := slog.LevelWarn
	if d.Outcome == CommitUnknown && !rerunnable(d.Err) {
		level = slog.LevelError
	}
	o.l.LogAttrs(ctx, level, logkeys.TxnPrefix+"COMMIT answer lost; outcome asked of the server",
		slog.String(logkeys.Name, d.Name), slog.Uint64(logkeys.XID, d.XID), slog.String(logkeys.Status, d.Status),
		slog.String(logkeys.Outcome, d.Outcome.String()), logkeys.Err(d.Err))
}

func (o slogObserver) TxLeak(d TxLeakData) {
	o.l.LogAttrs(context.Background(), slog.LevelError, logkeys.TxnPrefix+"transaction open too long",
		slog.String(logkeys.Name, d.Name), slog.Duration(logkeys.Open, d.Open), slog.String(logkeys.Stack, string(d.Stack)))
}

func (o slogObserver) CallbackPanic(ctx context.Context, d CallbackPanicData) {
	o.l.LogAttrs(ctx, slog.LevelError, logkeys.TxnPrefix+"AfterCommit callback panicked; the commit stands",
		slog.String(logkeys.Name, d.Name), slog.Any(logkeys.Panic, d.Value), slog.String(logkeys.Stack, string(d.Stack)))
}

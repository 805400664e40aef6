package txn

import (
	"context"
	"log/slog"
)

// NewSlogObserver returns an Observer that logs events to logger: retries
// at Info; transactions that ended in error and COMMIT answers that were
// lost but resolved (or run again) at Warn; unresolved COMMITs, leaks and callback panics
// at Error; successful ends at Debug. A nil
// logger discards everything. Messages carry the transaction's Name, never a
// connection string or password; an error from failing to connect is logged
// as pgx words it, naming the user, database, host and port.
func NewSlogObserver(logger *slog.Logger) Observer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return slogObserver{l: logger}
}

type slogObserver struct {
	NopObserver
	l *slog.Logger
}

func (o slogObserver) TxRetry(ctx context.Context, d TxRetryData) {
	o.l.LogAttrs(ctx, slog.LevelInfo, "txn: retrying transaction",
		slog.String("name", d.Name), slog.Int("attempt", d.Attempt),
		slog.String("sqlstate", d.SQLState), slog.Duration("wait", d.Wait), errAttr(d.Err))
}

func (o slogObserver) TxEnd(ctx context.Context, d TxEndData) {
	level := slog.LevelDebug
	if d.Err != nil {
		level = slog.LevelWarn
	}
	o.l.LogAttrs(ctx, level, "txn: transaction ended",
		slog.String("name", d.Name), slog.String("outcome", d.Outcome.String()),
		slog.Int("attempts", d.Attempts), slog.Duration("duration", d.Duration), errAttr(d.Err))
}

func (o slogObserver) CommitResolved(ctx context.Context, d CommitResolvedData) {
	level := slog.LevelWarn
	if d.Outcome == CommitUnknown && !rerunnable(d.Err) {
		level = slog.LevelError
	}
	o.l.LogAttrs(ctx, level, "txn: COMMIT answer lost; outcome asked of the server",
		slog.String("name", d.Name), slog.Uint64("xid", d.XID), slog.String("status", d.Status),
		slog.String("outcome", d.Outcome.String()), errAttr(d.Err))
}

func (o slogObserver) TxLeak(d TxLeakData) {
	o.l.LogAttrs(context.Background(), slog.LevelError, "txn: transaction open too long",
		slog.String("name", d.Name), slog.Duration("open", d.Open), slog.String("stack", string(d.Stack)))
}

func (o slogObserver) CallbackPanic(ctx context.Context, d CallbackPanicData) {
	o.l.LogAttrs(ctx, slog.LevelError, "txn: AfterCommit callback panicked; the commit stands",
		slog.String("name", d.Name), slog.Any("panic", d.Value), slog.String("stack", string(d.Stack)))
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", err.Error())
}

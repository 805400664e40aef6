package advisory

import (
	"context"
	"errors"
	"log/slog"

	"github.com/txkit/txkit/internal/logkeys"
)

// NewSlogObserver returns an Observer that implements every event
// interface and logs to logger: acquisitions and releases at Debug, locks
// not acquired and leaderships at Info, failures and lost leaderships at
// Warn, lost and leaked locks at Error. A nil logger discards everything.
//
// Messages start with "advisory: " and use the keys every txkit slog
// observer shares (see txn.NewSlogObserver): the lock's name under "name",
// an error's text under "error", then "kind", "shared", "namespace",
// "wait", "held", "token", "pid", "discarded", "term", "lost" and "stack".
// They never carry a connection string or password.
func NewSlogObserver(logger *slog.Logger) Observer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return slogObserver{l: logger}
}

type slogObserver struct{ l *slog.Logger }

// AcquireStart logs nothing: AcquireEnd says how the call went.
func (o slogObserver) AcquireStart(ctx context.Context, _ AcquireStartData) context.Context {
	return ctx
}

func (o slogObserver) AcquireEnd(ctx context.Context, d AcquireEndData) {
	attrs := []slog.Attr{
		slog.String(logkeys.Name, d.Name),
		slog.String(logkeys.Kind, d.Kind.String()),
		slog.Bool(logkeys.Shared, d.Shared),
		slog.Duration(logkeys.Wait, d.Wait),
	}
	if d.Namespace != "" {
		attrs = append(attrs, slog.String(logkeys.Namespace, d.Namespace))
	}
	switch {
	case d.Acquired:
		if d.Token != 0 {
			attrs = append(attrs, slog.Int64(logkeys.Token, d.Token))
		}
		if d.PID != 0 {
			attrs = append(attrs, slog.Uint64(logkeys.PID, uint64(d.PID)))
		}
		o.l.LogAttrs(ctx, slog.LevelDebug, logkeys.AdvisoryPrefix+"lock acquired", attrs...)
	case errors.Is(d.Err, ErrNotAcquired):
		o.l.LogAttrs(ctx, slog.LevelInfo, logkeys.AdvisoryPrefix+"lock not acquired", append(attrs, logkeys.Err(d.Err))...)
	default:
		o.l.LogAttrs(ctx, slog.LevelWarn, logkeys.AdvisoryPrefix+"lock failed", append(attrs, logkeys.Err(d.Err))...)
	}
}

func (o slogObserver) LockReleased(ctx context.Context, d LockReleasedData) {
	level := slog.LevelDebug
	if d.Err != nil {
		level = slog.LevelWarn
	}
	o.l.LogAttrs(ctx, level, logkeys.AdvisoryPrefix+"lock released",
		slog.String(logkeys.Name, d.Name), slog.Duration(logkeys.Held, d.Held),
		slog.Bool(logkeys.Discarded, d.Discarded), logkeys.Err(d.Err))
}

func (o slogObserver) LockLost(d LockLostData) {
	o.l.LogAttrs(context.Background(), slog.LevelError, logkeys.AdvisoryPrefix+"lock lost",
		slog.String(logkeys.Name, d.Name), slog.Duration(logkeys.Held, d.Held), logkeys.Err(d.Err))
}

func (o slogObserver) LockLeak(d LockLeakData) {
	o.l.LogAttrs(context.Background(), slog.LevelError, logkeys.AdvisoryPrefix+"lock garbage collected without Release; it was released now",
		slog.String(logkeys.Name, d.Name), slog.Duration(logkeys.Held, d.Held), slog.String(logkeys.Stack, string(d.Stack)))
}

func (o slogObserver) LeaderStart(ctx context.Context, d LeaderStartData) {
	o.l.LogAttrs(ctx, slog.LevelInfo, logkeys.AdvisoryPrefix+"leadership won",
		slog.String(logkeys.Name, d.Name), slog.Int64(logkeys.Term, d.Term))
}

func (o slogObserver) LeaderEnd(ctx context.Context, d LeaderEndData) {
	level := slog.LevelInfo
	if d.Lost {
		level = slog.LevelWarn
	}
	o.l.LogAttrs(ctx, level, logkeys.AdvisoryPrefix+"leadership ended",
		slog.String(logkeys.Name, d.Name), slog.Int64(logkeys.Term, d.Term), slog.Duration(logkeys.Held, d.Held),
		slog.Bool(logkeys.Lost, d.Lost), logkeys.Err(d.Err))
}

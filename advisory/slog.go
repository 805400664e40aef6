package advisory

import (
	"context"
	"errors"
	"log/slog"
)

// NewSlogObserver returns an Observer that logs to logger: acquisitions and
// releases at Debug, locks not acquired at Info, failures at Warn, lost and
// leaked locks at Error. A nil logger discards everything.
func NewSlogObserver(logger *slog.Logger) Observer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return slogObserver{l: logger}
}

type slogObserver struct{ l *slog.Logger }

func (o slogObserver) AcquireStart(ctx context.Context, _ AcquireStartData) context.Context {
	return ctx
}

func (o slogObserver) AcquireEnd(ctx context.Context, d AcquireEndData) {
	attrs := []slog.Attr{
		slog.String("lock", d.Name),
		slog.String("kind", d.Kind.String()),
		slog.Bool("shared", d.Shared),
		slog.Duration("wait", d.Wait),
	}
	if d.Namespace != "" {
		attrs = append(attrs, slog.String("namespace", d.Namespace))
	}
	switch {
	case d.Acquired:
		if d.Token != 0 {
			attrs = append(attrs, slog.Int64("token", d.Token))
		}
		if d.PID != 0 {
			attrs = append(attrs, slog.Uint64("pid", uint64(d.PID)))
		}
		o.l.LogAttrs(ctx, slog.LevelDebug, "advisory lock acquired", attrs...)
	case errors.Is(d.Err, ErrNotAcquired):
		o.l.LogAttrs(ctx, slog.LevelInfo, "advisory lock not acquired", append(attrs, slog.Any("err", d.Err))...)
	default:
		o.l.LogAttrs(ctx, slog.LevelWarn, "advisory lock failed", append(attrs, slog.Any("err", d.Err))...)
	}
}

func (o slogObserver) LockReleased(ctx context.Context, d ReleasedData) {
	level := slog.LevelDebug
	attrs := []slog.Attr{slog.String("lock", d.Name), slog.Duration("held", d.Held), slog.Bool("discarded", d.Discarded)}
	if d.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Any("err", d.Err))
	}
	o.l.LogAttrs(ctx, level, "advisory lock released", attrs...)
}

func (o slogObserver) LockLost(d LostData) {
	o.l.LogAttrs(context.Background(), slog.LevelError, "advisory lock lost",
		slog.String("lock", d.Name), slog.Duration("held", d.Held), slog.Any("err", d.Err))
}

func (o slogObserver) LockLeak(d LeakData) {
	o.l.LogAttrs(context.Background(), slog.LevelError, "advisory lock garbage collected without Release; it was released now",
		slog.String("lock", d.Name), slog.Duration("held", d.Held), slog.String("acquired_at", string(d.Stack)))
}

func (o slogObserver) LeaderStart(ctx context.Context, d LeaderStartData) {
	o.l.LogAttrs(ctx, slog.LevelInfo, "leadership won", slog.String("lock", d.Name), slog.Int64("term", d.Term))
}

func (o slogObserver) LeaderEnd(ctx context.Context, d LeaderEndData) {
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("lock", d.Name), slog.Int64("term", d.Term), slog.Duration("held", d.Held), slog.Bool("lost", d.Lost)}
	if d.Err != nil {
		attrs = append(attrs, slog.Any("err", d.Err))
	}
	if d.Lost {
		level = slog.LevelWarn
	}
	o.l.LogAttrs(ctx, level, "leadership ended", attrs...)
}

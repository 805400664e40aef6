package pool

import (
	"context"
	"log/slog"
	"time"
)

// Close stops new acquires at once (they fail with [ErrClosed]), waits
// until every held connection is released or ctx is done, and closes the
// pool. If connections are still held at the deadline it logs each holder
// (with its stack when captured), closes their sockets so that their
// server sessions end, and returns a [*CloseError] naming them; it returns
// within about the deadline even then. The pool's remaining cleanup ends
// when the holders release. Calling Close again returns the first result.
func (p *Pool) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Pool) close(ctx context.Context) error {
	p.t.closed.Store(true)
	// Acquires still waiting when Close ends fail with ErrClosed.
	defer p.t.dog.shutdown()
	if p.stopBackground != nil {
		close(p.stopBackground)
		<-p.backgroundDone
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for p.t.heldCount() > 0 {
		select {
		case <-p.t.changed:
		case <-tick.C:
		case <-ctx.Done():
			return p.abandon(ctx)
		}
	}
	closed := make(chan struct{})
	go func() { p.pgx.Close(); close(closed) }()
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		// Only closing idle connections remains; let it finish alone.
		return p.abandon(ctx)
	}
}

// abandon ends a Close whose deadline passed with connections held.
func (p *Pool) abandon(ctx context.Context) error {
	held := p.t.holders()
	p.t.mu.Lock()
	for c := range p.t.held {
		// Closing the socket is safe while another goroutine uses the
		// connection: that goroutine gets an error, and the release
		// destroys the connection.
		if nc := c.PgConn().Conn(); nc != nil {
			_ = nc.Close()
		}
	}
	p.t.mu.Unlock()
	go p.pgx.Close()
	if len(held) == 0 {
		return ctx.Err()
	}
	for _, h := range held {
		attrs := []slog.Attr{slog.Duration("held", h.Held), slog.Uint64("pid", uint64(h.PID))}
		if h.Label != "" {
			attrs = append(attrs, slog.String("label", h.Label))
		}
		if h.Stack != "" {
			attrs = append(attrs, slog.String("stack", h.Stack))
		}
		p.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelError, "pool: connection still held at close", attrs...)
	}
	return &CloseError{Held: held}
}

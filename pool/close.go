package pool

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Close stops new acquires at once (they fail with [ErrClosed]), waits
// until every held connection is released or ctx is done, and closes the
// pool. If connections are still held at the deadline it logs each holder
// (with its stack when captured), closes their sockets so that their
// server sessions end, and returns a [*CloseError] naming them; it returns
// within about the deadline even then. The pool's remaining cleanup ends
// when the holders release. Acquires still waiting when Close ends fail
// with [ErrClosed].
//
// Calling Close again, or from several goroutines at once, is safe: every
// call returns the first call's result, and a call whose ctx ends before
// the first call has finished returns ctx's error instead of waiting
// longer. Close on a nil *Pool returns nil.
func (p *Pool) Close(ctx context.Context) error {
	if p == nil {
		return nil
	}
	first := false
	p.closeOnce.Do(func() {
		first = true
		p.closeDone = make(chan struct{})
	})
	if first {
		p.closeErr = p.close(ctx)
		close(p.closeDone)
		return p.closeErr
	}
	select {
	case <-p.closeDone:
		return p.closeErr
	default:
	}
	select {
	case <-p.closeDone:
		return p.closeErr
	case <-ctx.Done():
		return fmt.Errorf("pool: Close is still under way in another call: %w", context.Cause(ctx))
	}
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
	// Acquires that began before closed was set may still get a
	// connection: wait for them too, so that none reaches pgxpool after
	// its Close (it would fail with pgxpool's own error, not ErrClosed).
	for p.t.heldCount() > 0 || p.t.waiting.Load() > 0 {
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
	// End the acquires still waiting before pgxpool closes under them.
	p.t.dog.shutdown()
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

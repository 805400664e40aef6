package pool

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// background runs the leak scan and the idle-connection pings until stop
// is closed. A zero period turns its task off.
func (p *Pool) background(leakThreshold, pingEvery, pingTimeout time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var leakTick, pingTick <-chan time.Time
	if leakThreshold > 0 {
		t := time.NewTicker(min(max(leakThreshold/4, time.Millisecond), time.Second))
		defer t.Stop()
		leakTick = t.C
	}
	if pingEvery > 0 {
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		pingTick = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-leakTick:
			p.t.reportLeaks(leakThreshold)
		case <-pingTick:
			p.pingIdle(pingTimeout, stop)
		}
	}
}

// pingIdle pings every idle connection at once, each bounded by timeout,
// and closes those that do not answer: a dead socket is found here rather
// than by the next request that gets it.
func (p *Pool) pingIdle(timeout time.Duration, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, c := range p.pgx.AcquireAllIdle(ctx) {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				p.log.LogAttrs(ctx, slog.LevelWarn, "pool: idle connection failed its ping; closed",
					slog.Uint64("pid", uint64(c.Conn().PgConn().PID())), slog.String("error", err.Error()))
				// A closed connection is destroyed, not pooled, on release.
				_ = c.Conn().Close(ctx)
			}
			c.Release()
		})
	}
	wg.Wait()
}

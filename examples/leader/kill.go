package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/advisory"
)

// takeoverBound is how long the killer waits for a new leader.
const takeoverBound = 10 * time.Second

type kill struct {
	pid, next uint32 // killed backend, and the next holder (0: none)
	takeover  time.Duration
}

// killLeaders terminates the leader's backend every interval until ctx
// ends, and measures how long the lock stays without a holder. It returns
// once ctx has ended.
func killLeaders(ctx context.Context, pool *pgxpool.Pool, every time.Duration) []kill {
	var kills []kill
	if every == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return kills
		case <-t.C:
		}
		pid, ok := holder(ctx, pool, 0)
		if !ok {
			continue
		}
		if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1)", int64(pid)); err != nil {
			continue
		}
		fmt.Printf("killer: terminated the leader's backend %d\n", pid)
		start := time.Now()
		k := kill{pid: pid}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), takeoverBound)
		for {
			if next, ok := holder(wctx, pool, pid); ok {
				k.next, k.takeover = next, time.Since(start)
				break
			}
			if wctx.Err() != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		kills = append(kills, k)
	}
}

// holder returns the backend holding the lock, other than not.
func holder(ctx context.Context, pool *pgxpool.Pool, not uint32) (uint32, bool) {
	locks, err := advisory.Inspect(ctx, pool, lockName)
	if err != nil {
		return 0, false
	}
	for _, l := range locks {
		if l.Name == lockName && l.Granted && l.PID != not {
			return l.PID, true
		}
	}
	return 0, false
}

package txn_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/txkit/txkit/txn"
)

// callTimes is where one WithTx call's time went: waiting for a turn
// (before an attempt's BEGIN, less the backoff), in attempts that lost, in
// backoff, and in the attempt that ended the call.
type callTimes struct {
	total, queue, lost, boundRanOut, backoff, last time.Duration
	attempts                                       int
	mark                                           time.Time
}

// breakdown is an Observer that records callTimes for every call, to show
// where a slow call's time went.
type breakdown struct {
	mu    sync.Mutex
	calls []*callTimes
	codes map[string]int // lost attempts by SQLSTATE

	running  int           // attempts running now
	changed  time.Time     // when running last changed
	integral time.Duration // of running over time
	span     time.Duration // the time integral covers
}

// count adds d to the attempts running. b.mu is held.
func (b *breakdown) count(d int) {
	now := time.Now()
	if !b.changed.IsZero() {
		b.integral += time.Duration(b.running) * now.Sub(b.changed)
		b.span += now.Sub(b.changed)
	}
	b.changed = now
	b.running += d
}

// concurrency is the mean number of attempts running at once.
func (b *breakdown) concurrency() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.span == 0 {
		return 0
	}
	return float64(b.integral) / float64(b.span)
}

type callTimesKey struct{}

func newBreakdown() *breakdown { return &breakdown{codes: map[string]int{}} }

func (b *breakdown) TxStart(ctx context.Context, _ txn.TxStartData) context.Context {
	return context.WithValue(ctx, callTimesKey{}, &callTimes{mark: time.Now()})
}

func (b *breakdown) TxAttemptStart(ctx context.Context, _ txn.TxAttemptStartData) context.Context {
	c := ctx.Value(callTimesKey{}).(*callTimes)
	c.queue += max(0, time.Since(c.mark))
	c.attempts++
	b.mu.Lock()
	b.count(1)
	b.mu.Unlock()
	return ctx
}

func (b *breakdown) TxAttemptEnd(ctx context.Context, d txn.TxAttemptEndData) {
	c := ctx.Value(callTimesKey{}).(*callTimes)
	c.mark = time.Now()
	b.mu.Lock()
	b.count(-1)
	b.mu.Unlock()
	if d.Outcome == txn.Committed || d.Err == nil {
		c.last = d.Duration
		return
	}
	c.lost += d.Duration
}

func (b *breakdown) TxRetry(ctx context.Context, d txn.TxRetryData) {
	c := ctx.Value(callTimesKey{}).(*callTimes)
	c.backoff += d.Wait
	c.mark = time.Now().Add(d.Wait)
	if d.SQLState == "55P03" {
		// The lost attempt was the last one counted in lost.
		c.boundRanOut++
	}
	b.mu.Lock()
	b.codes[d.SQLState]++
	b.mu.Unlock()
}

func (b *breakdown) TxEnd(ctx context.Context, d txn.TxEndData) {
	c := ctx.Value(callTimesKey{}).(*callTimes)
	c.total = d.Duration
	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.mu.Unlock()
}

// report returns, for the slowest 1% of calls and for all calls, the mean
// time per call spent in each part, in milliseconds, and the mean attempts
// per call.
func (b *breakdown) report() (slow, all [4]float64, attempts float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := slices.Clone(b.calls)
	if len(cs) == 0 {
		return
	}
	slices.SortFunc(cs, func(x, y *callTimes) int { return int(y.total - x.total) })
	mean := func(cs []*callTimes) (m [4]float64) {
		for _, c := range cs {
			for i, d := range []time.Duration{c.queue, c.lost, c.backoff, c.last} {
				m[i] += float64(d) / float64(time.Millisecond) / float64(len(cs))
			}
		}
		return m
	}
	n := 0
	for _, c := range cs {
		n += c.attempts
	}
	return mean(cs[:max(1, len(cs)/100)]), mean(cs), float64(n) / float64(len(cs))
}

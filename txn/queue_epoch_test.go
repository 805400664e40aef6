package txn

import (
	"context"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
)

type epochBeginner struct{}

func (*epochBeginner) BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error) { return nil, nil }

// A waiting attempt's turn carries the epoch it was given under: a
// halving that happens before the attempt picks the turn up does not count
// as its own, so its later conflict halves the limit no further.
func TestTurnKeepsTheEpochItWasGivenUnder(t *testing.T) {
	ctx := t.Context()
	db := &epochBeginner{}
	opts := &Options{Name: "epoch"}
	t.Cleanup(func() {
		queues.mu.Lock()
		delete(queues.m, queueKey{db: beginnerKey(db), name: "epoch"})
		queues.n.Store(int32(len(queues.m)))
		queues.mu.Unlock()
	})

	alone := newQueueSlot(db, opts, 0, false)
	if hot, err := alone.wait(ctx, 1); err != nil || !hot {
		t.Fatalf("the retry takes the turn: hot %v, err %v", hot, err)
	}
	e := alone.entry

	waiter := newQueueSlot(db, opts, 0, false)
	got := make(chan error, 1)
	go func() {
		_, err := waiter.wait(ctx, 0)
		got <- err
	}()
	for {
		queues.mu.Lock()
		n := len(e.waiting)
		queues.mu.Unlock()
		if n == 1 {
			break
		}
		select {
		case err := <-got:
			t.Fatalf("the first attempt did not wait behind the retry: %v", err)
		default:
			runtime.Gosched()
		}
	}

	// The retry ends and gives the waiter its turn; before the waiter
	// picks it up, another attempt's conflict halves the limit.
	queues.mu.Lock()
	alone.entry = nil
	e.stop()
	e.dispatch()
	given := e.epoch
	e.limit, e.epoch = e.limit/2, e.epoch+1
	halved := e.limit
	queues.mu.Unlock()

	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if waiter.epoch != given {
		t.Fatalf("the turn's epoch is %d, want %d, the one it was given under", waiter.epoch, given)
	}
	waiter.done(true)
	queues.mu.Lock()
	limit := e.limit
	queues.mu.Unlock()
	if limit != halved {
		t.Fatalf("the limit is %v after a conflict of an attempt given its turn before the halving, want %v", limit, halved)
	}
}

package txn

import (
	"context"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
)

// Hot transactions take turns. Once an attempt of a transaction has lost
// to a serialization failure, a deadlock or a bounded lock wait, this
// process limits how many attempts of that transaction run at once on the
// same Beginner, and lets the others wait for their turn in order of
// arrival. The transaction is known by Options.Name, or without a name by
// the code of its fn: every closure made by one function literal, and every
// call passing the same function, is one transaction. (A helper that wraps
// its callers' functions in one literal of its own makes them all one
// transaction: such helpers should set a Name.) The call that lost goes
// ahead of first attempts, and its next attempt runs alone: it waits until
// no attempt of the transaction runs, and none starts until it ends. So
// within one process a call loses at most once to its own transaction's
// other calls, and callers that keep losing are not overtaken by
// newcomers.
//
// The limit on first attempts adapts much as TCP's congestion window does:
// it starts at queueStart, halves when an attempt that began under the
// current limit loses to a conflict, and grows by one for every
// queueGrowth limits' worth of attempts that do not. A transaction whose
// attempts collide whenever two run at once (transfers among a few hot
// rows) ends up running one attempt at a time, without the conflicts, and
// tries two again after a dozen attempts that did not conflict (the whole
// part of the limit counts); one that collides now and then keeps more of
// its concurrency. Once the limit
// grows past queueForget with no one waiting, the transaction is forgotten
// and runs freely, as one that never conflicted does: a process with no
// hot transaction pays one atomic load per call.
//
// The wait holds no connection and ends with ctx. The first attempts of a
// hot transaction also begin with their lock waits bounded
// (lockBoundFirst), as retries do, so that one caught in a deadlock with a
// transaction outside the queue (another process, another transaction on
// the same rows) retries after milliseconds instead of waiting
// deadlock_timeout.
const (
	queueStart  = 4.0
	queueForget = 64.0
)

// queueGrowth is how many limits' worth of attempts that do not conflict
// raise the limit by one: slower than TCP's one, because here a conflict
// costs a whole attempt, and in a deadlock a bounded wait too.
const queueGrowth = 8.0

// queueKey identifies a transaction for the queue: the Beginner it runs
// on, and its Name, or without one the code of its fn.
type queueKey struct {
	db   any // see beginnerKey
	name string
	code uintptr
}

// beginnerKey is db as a map key: itself when it is a pointer (*pgxpool.Pool
// and the like), else its type, since a Beginner of another kind may not be
// hashable (a struct holding a map).
func beginnerKey(db Beginner) any {
	if t := reflect.TypeOf(db); t.Kind() != reflect.Pointer {
		return t
	}
	return db
}

// queueEntry is the turn-taking of one hot transaction. Its fields are
// under queues.mu.
type queueEntry struct {
	limit     float64  // its whole part is how many attempts may run at once (at least 1)
	running   int      // attempts running now
	exclusive bool     // the one running attempt is a retry, running alone
	epoch     uint64   // counts halvings of limit
	waiting   []waiter // attempts waiting for their turn, in order
}

// waiter is an attempt waiting for its turn: losses is how many attempts
// of its call lost to a conflict before it. The turn comes with the
// entry's epoch when it was given.
type waiter struct {
	turn   chan uint64
	losses int
}

// aloneAfter is how many conflicts a call loses before its next attempt
// runs alone: a repeat loser does not meet the same collision again.
const aloneAfter = 1

// free reports whether an attempt whose call lost losses times may start
// now.
func (e *queueEntry) free(losses int) bool {
	if e.exclusive {
		return false
	}
	if losses >= aloneAfter {
		return e.running == 0
	}
	// The whole part: a limit of 1.5, on its way back up from 1, still
	// lets one attempt run, not two. Compared with the limit itself, one
	// success after a halving to 1 let two run again, and a transaction
	// whose attempts collide whenever two run at once ran two at a time
	// most of the time (1.3 attempts per call on BenchmarkHotSpot, 1.1
	// now).
	return float64(e.running) < math.Floor(e.limit)
}

var queues = struct {
	mu sync.Mutex
	m  map[queueKey]*queueEntry
	n  atomic.Int32 // len(m), read without the lock
}{m: map[queueKey]*queueEntry{}}

// queueSlot is one call's relation to its transaction's turn-taking.
type queueSlot struct {
	off   bool // Options.NoRetryQueue, or a call inside another transaction
	key   queueKey
	entry *queueEntry // set while the running attempt holds a turn
	epoch uint64      // the entry's epoch when the turn was given
}

// newQueueSlot is the slot of a call of opts' transaction on db. A call
// inside another transaction (inTx: RequiresNew) takes no turn: waiting
// for one would hold its caller's connection, and the turn it waits for
// may be its caller's own.
func newQueueSlot(db Beginner, opts *Options, code uintptr, inTx bool) queueSlot {
	k := queueKey{db: beginnerKey(db), name: opts.Name}
	if k.name == "" {
		k.code = code
	}
	return queueSlot{off: opts.NoRetryQueue || inTx, key: k}
}

// wait takes a turn for the next attempt if the transaction is hot, and
// reports whether it is. losses is how many attempts of the call lost to a
// conflict: a retry goes ahead of first attempts, and a repeat loser's
// attempt runs alone.
func (q *queueSlot) wait(ctx context.Context, losses int) (hot bool, err error) {
	retrying := losses > 0
	if q.off || (queues.n.Load() == 0 && !retrying) {
		return false, nil
	}
	queues.mu.Lock()
	e := queues.m[q.key]
	if e == nil {
		if !retrying {
			queues.mu.Unlock()
			return false, nil
		}
		// The first conflict of this transaction: from now on its
		// attempts take turns.
		if len(queues.m) >= queueMaxIdle {
			forgetIdleQueues()
		}
		e = &queueEntry{limit: queueStart}
		queues.m[q.key] = e
		queues.n.Store(int32(len(queues.m)))
	}
	if len(e.waiting) == 0 && e.free(losses) {
		e.start(losses)
		q.entry, q.epoch = e, e.epoch
		queues.mu.Unlock()
		return true, nil
	}
	turn := make(chan uint64, 1)
	w := waiter{turn: turn, losses: losses}
	if retrying {
		// Behind the retries already waiting, ahead of first attempts.
		i := 0
		for i < len(e.waiting) && e.waiting[i].losses > 0 {
			i++
		}
		e.waiting = slices.Insert(e.waiting, i, w)
	} else {
		e.waiting = append(e.waiting, w)
	}
	queues.mu.Unlock()
	select {
	case epoch := <-turn:
		q.entry, q.epoch = e, epoch
		return true, nil
	case <-ctx.Done():
		queues.mu.Lock()
		if i := slices.IndexFunc(e.waiting, func(w waiter) bool { return w.turn == turn }); i >= 0 {
			e.waiting = slices.Delete(e.waiting, i, i+1)
		} else {
			// The turn came as ctx ended: pass it on.
			e.stop()
		}
		e.dispatch()
		queues.mu.Unlock()
		return false, context.Cause(ctx)
	}
}

// done ends the running attempt's turn, if it had one: conflict says
// whether it lost to a conflict. The limit adapts, and waiting attempts
// get the turns that are free.
func (q *queueSlot) done(conflict bool) {
	e := q.entry
	if e == nil {
		return
	}
	q.entry = nil
	queues.mu.Lock()
	defer queues.mu.Unlock()
	e.stop()
	switch {
	case conflict && q.epoch == e.epoch:
		// Halve once per limit: attempts that began under the old limit
		// and lose after the halving do not halve it again.
		e.limit = max(1, e.limit/2)
		e.epoch++
	case !conflict:
		e.limit += 1 / (queueGrowth * e.limit)
	}
	e.dispatch()
	if e.limit >= queueForget && e.running == 0 && len(e.waiting) == 0 && queues.m[q.key] == e {
		delete(queues.m, q.key)
		queues.n.Store(int32(len(queues.m)))
	}
}

// leaveTurn gives up the attempt's turn, if it holds one, without counting
// the attempt either way: its COMMIT's answer was lost, and asking the
// server what became of it competes with no other attempt. b.turn is nil
// afterwards.
func (b *begun) leaveTurn() {
	e := b.turn
	if e == nil {
		return
	}
	b.turn = nil
	queues.mu.Lock()
	e.stop()
	e.dispatch()
	queues.mu.Unlock()
}

// queueMaxIdle bounds the transactions remembered: names made up per call
// must not accumulate.
const queueMaxIdle = 1024

// forgetIdleQueues forgets the transactions no attempt runs or waits for;
// they lose only what their limit learned. queues.mu is held.
func forgetIdleQueues() {
	for k, e := range queues.m {
		if e.running == 0 && len(e.waiting) == 0 {
			delete(queues.m, k)
		}
	}
}

// dispatch gives free turns to waiting attempts, in order. queues.mu is
// held.
func (e *queueEntry) dispatch() {
	for len(e.waiting) > 0 && e.free(e.waiting[0].losses) {
		w := e.waiting[0]
		e.waiting = slices.Delete(e.waiting, 0, 1)
		e.start(w.losses)
		w.turn <- e.epoch
	}
}

// start counts an attempt that got its turn; stop one that ended.
func (e *queueEntry) start(losses int) {
	e.running++
	e.exclusive = losses >= aloneAfter
}

func (e *queueEntry) stop() {
	e.running--
	e.exclusive = false
}

// codeOf identifies fn's code: the same for every closure made by one
// function literal, and for every call passing the same function.
func codeOf(fn any) uintptr {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return 0
	}
	return v.Pointer()
}

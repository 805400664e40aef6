package txn

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Repeat losers queue. A call that has lost an attempt to a serialization
// failure, a deadlock or a bounded lock wait runs its further attempts
// only while it holds its transaction's place in a queue of this process:
// the transaction is known by Options.Name, or, without a name, by the
// place WithTx was called from. The place is held from the call's first
// conflict until the call ends, so the calls of one hot transaction that
// keep losing run their retries one at a time instead of colliding again,
// and a call that lost waits its turn (in order of arrival) rather than
// racing every newcomer. The wait holds no connection and honours ctx.
//
// A transaction that lost a conflict less than hotWindow ago is hot: while
// it is, the first attempt of each of its calls also runs in the queue, and
// with its lock waits bounded (lockBoundFirst), so that within the process
// its calls take turns instead of deadlocking first and waiting
// deadlock_timeout. A transaction that has not lost for hotWindow runs its
// first attempts freely again. A process with no hot transaction pays one
// atomic load per call for all this.
const hotWindow = time.Second

// queueKey identifies a transaction for the queue: its Name, or the
// program counter of its caller when it has none.
type queueKey struct {
	name string
	pc   uintptr
}

// queueEntry is a transaction's queue: a one-place semaphore, and when it
// last lost to a conflict.
type queueEntry struct {
	turn         chan struct{} // holds a token while a call runs in the queue
	users        int           // calls holding or waiting for the turn; under queues.mu
	lastConflict int64         // UnixNano of the last conflict; under queues.mu
}

var queues = struct {
	mu sync.Mutex
	m  map[queueKey]*queueEntry
	n  atomic.Int32 // len(m), read without the lock
}{m: map[queueKey]*queueEntry{}}

// queueSlot is one call's relation to its transaction's queue.
type queueSlot struct {
	off     bool // Options.NoRetryQueue
	keyed   bool
	key     queueKey
	entry   *queueEntry // set while the call is a user of the entry
	holding bool        // the call holds the turn
}

func newQueueSlot(opts *Options) queueSlot {
	return queueSlot{off: opts.NoRetryQueue, key: queueKey{name: opts.Name}}
}

// ensureKey finds the caller's program counter for a transaction without
// a name; only calls that need the queue pay for it.
func (q *queueSlot) ensureKey() {
	if q.keyed {
		return
	}
	q.keyed = true
	if q.key.name == "" {
		q.key.pc = callerPC()
	}
}

// hot reports whether the call's transaction lost a conflict within
// hotWindow. Checked before the first attempt.
func (q *queueSlot) hot() bool {
	if q.off || queues.n.Load() == 0 {
		return false
	}
	q.ensureKey()
	queues.mu.Lock()
	e := queues.m[q.key]
	hot := e != nil && time.Now().UnixNano()-e.lastConflict < int64(hotWindow)
	queues.mu.Unlock()
	return hot
}

// conflicted records that an attempt of the call lost to a conflict.
func (q *queueSlot) conflicted() {
	if q.off {
		return
	}
	q.ensureKey()
	q.use()
	queues.mu.Lock()
	q.entry.lastConflict = time.Now().UnixNano()
	queues.mu.Unlock()
}

// use makes the call a user of its transaction's entry.
func (q *queueSlot) use() {
	if q.entry != nil {
		return
	}
	queues.mu.Lock()
	e := queues.m[q.key]
	if e == nil {
		e = &queueEntry{turn: make(chan struct{}, 1)}
		queues.m[q.key] = e
		queues.n.Store(int32(len(queues.m)))
	}
	e.users++
	queues.mu.Unlock()
	q.entry = e
}

// wait takes the call's turn in its transaction's queue, unless it has it.
func (q *queueSlot) wait(ctx context.Context) error {
	if q.off || q.holding {
		return nil
	}
	q.ensureKey()
	q.use()
	select {
	case q.entry.turn <- struct{}{}:
		q.holding = true
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// done gives up the call's turn and its use of the entry, and forgets the
// entry when no call uses it and its transaction is no longer hot.
func (q *queueSlot) done() {
	e := q.entry
	if e == nil {
		return
	}
	if q.holding {
		<-e.turn
		q.holding = false
	}
	q.entry = nil
	queues.mu.Lock()
	e.users--
	if e.users == 0 && time.Now().UnixNano()-e.lastConflict >= int64(hotWindow) && queues.m[q.key] == e {
		delete(queues.m, q.key)
		queues.n.Store(int32(len(queues.m)))
	}
	queues.mu.Unlock()
	forgetColdQueues()
}

// forgetColdQueues drops, now and then, entries whose transactions have
// cooled and that no call uses, so that names made up per call do not
// accumulate.
func forgetColdQueues() {
	if queues.n.Load() < 64 {
		return
	}
	now := time.Now().UnixNano()
	queues.mu.Lock()
	for k, e := range queues.m {
		if e.users == 0 && now-e.lastConflict >= int64(hotWindow) {
			delete(queues.m, k)
		}
	}
	queues.n.Store(int32(len(queues.m)))
	queues.mu.Unlock()
}

// internalPCs caches, per program counter, whether it belongs to txkit's
// own txn or retry code, which callerPC skips.
var internalPCs sync.Map // uintptr -> bool

// callerPC is the program counter of the first caller outside package txn
// and the retry loop: where WithTx or WithTxValue was called.
func callerPC() uintptr {
	var pcs [16]uintptr
	n := runtime.Callers(2, pcs[:])
	for _, pc := range pcs[:n] {
		internal, ok := internalPCs.Load(pc)
		if !ok {
			name := ""
			if f := runtime.FuncForPC(pc - 1); f != nil {
				name = f.Name()
			}
			internal = strings.HasPrefix(name, "github.com/txkit/txkit/txn.") ||
				strings.HasPrefix(name, "github.com/txkit/txkit/retry.")
			internalPCs.Store(pc, internal)
		}
		if !internal.(bool) {
			return pc
		}
	}
	return 0
}

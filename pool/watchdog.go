package pool

import (
	"context"
	"sync"
	"time"
)

// watchdog enforces the acquire timeout for every acquire of a pool with
// one ticker, instead of a timer per acquire. A timer costs a clock read,
// an allocation and two updates of the runtime's timer heap; on an idle
// connection that is most of an acquire's cost, for a deadline that almost
// never fires. Each tick counts one period for every acquire in flight and
// cancels those whose count has reached the timeout, so a timeout fires
// after at least the timeout and at most two periods more (one when the
// period divides the timeout). The period is a tenth of the timeout,
// between 1 ms and 20 ms.
//
// The ticker runs only while acquires happen: it stops after a second with
// none in flight, and the next acquire starts it again. Without an acquire
// timeout there is no ticker; the list still lets Close end the acquires
// that are waiting when it finishes.
type watchdog struct {
	period time.Duration
	ticks  int64 // an acquire is cancelled at its ticks-th scan; 0: never

	mu       sync.Mutex
	head     *acquireState // acquires in flight, a doubly linked list through acquireState.prev/next
	running  bool
	stopped  bool
	stop     chan struct{}
	finished chan struct{}
}

// watchdogIdle is how long the ticker keeps running with no acquire in
// flight before it stops.
const watchdogIdle = time.Second

func newWatchdog(timeout time.Duration) *watchdog {
	if timeout <= 0 {
		return &watchdog{}
	}
	period := min(max(timeout/10, time.Millisecond), 20*time.Millisecond)
	// At the k-th scan after it started, an acquire has waited more than
	// (k-1) periods; cancel it at the first k where that is the timeout.
	// (Rounded up without adding first: the timeout may be near the
	// largest Duration.)
	ticks := int64(timeout / period)
	if timeout%period != 0 {
		ticks++
	}
	return &watchdog{period: period, ticks: ticks + 1}
}

// add watches s. It reports false, and
// does nothing, once the watchdog has been stopped for good.
func (w *watchdog) add(s *acquireState) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	s.watched, s.scans = true, 0
	s.prev, s.next = nil, w.head
	if w.head != nil {
		w.head.prev = s
	}
	w.head = s
	if !w.running && w.ticks > 0 {
		w.running = true
		w.stop, w.finished = make(chan struct{}), make(chan struct{})
		go w.run(w.stop, w.finished)
	}
	return true
}

// remove stops watching s; it is safe to call for an s the watchdog has
// already cancelled.
func (w *watchdog) remove(s *acquireState) {
	w.mu.Lock()
	w.unlink(s)
	w.mu.Unlock()
}

// unlink takes s off the list; w.mu is held.
func (w *watchdog) unlink(s *acquireState) {
	if !s.watched {
		return
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		w.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	}
	s.prev, s.next, s.watched = nil, nil, false
}

func (w *watchdog) run(stop <-chan struct{}, finished chan<- struct{}) {
	defer close(finished)
	tick := time.NewTicker(w.period)
	defer tick.Stop()
	idle, idleScans := 0, int(watchdogIdle/w.period)
	var expired []*acquireState
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		w.mu.Lock()
		if w.head == nil {
			idle++
			if idle >= idleScans {
				w.running = false
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			continue
		}
		idle = 0
		for s := w.head; s != nil; {
			next := s.next
			s.scans++
			if s.scans >= w.ticks {
				w.unlink(s)
				expired = append(expired, s)
			}
			s = next
		}
		w.mu.Unlock()
		for i, s := range expired {
			s.stop(context.DeadlineExceeded, errAcquireTimeout)
			expired[i] = nil
		}
		expired = expired[:0]
	}
}

// shutdown stops the ticker for good and ends the acquires still in
// flight with errClosing; later ones are refused by add.
func (w *watchdog) shutdown() {
	w.mu.Lock()
	w.stopped = true
	running, stop, finished := w.running, w.stop, w.finished
	w.running = false
	var waiting []*acquireState
	for w.head != nil {
		waiting = append(waiting, w.head)
		w.unlink(w.head)
	}
	w.mu.Unlock()
	if running {
		close(stop)
		<-finished
	}
	for _, s := range waiting {
		s.stop(context.Canceled, errClosing)
	}
}

package txn

import (
	"time"
)

// watchLeak reports the transaction to obs if it is still open after
// threshold; the returned func stops the watch.
func watchLeak(name string, threshold time.Duration, obs TxLeakObserver, stack []byte) (stop func()) {
	start := time.Now()
	t := time.AfterFunc(threshold, func() {
		obs.TxLeak(TxLeakData{Name: name, Open: time.Since(start), Stack: stack})
	})
	return func() { t.Stop() }
}

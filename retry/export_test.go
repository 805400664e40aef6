package retry

import "time"

// SetNow replaces the retry loop's clock until the returned func is
// called. Tests that use it must not run in parallel with others.
func SetNow(f func() time.Time) (restore func()) {
	old := now
	now = f
	return func() { now = old }
}

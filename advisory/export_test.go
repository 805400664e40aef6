package advisory

import "context"

// UnlockBehind releases l's lock on its own connection without Release, so
// that tests can see what Release does when the server says the lock was
// not held.
func UnlockBehind(ctx context.Context, l *Lock) error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	sql, args := unlockStatement(l.h.k, l.h.shared)
	_, err := l.h.conn.Exec(ctx, sql, args...)
	return err
}

// CapturedStack reports whether l's acquiring stack was captured.
func CapturedStack(l *Lock) bool { return len(l.h.callers) > 0 }

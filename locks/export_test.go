package locks

// ClaimSQL gives the tests of package locks_test the statement Claim runs.
func (q Queue[T]) ClaimSQL(n int) (string, []any, error) { return q.claimSQL(n) }

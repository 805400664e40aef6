package locks

// ClaimSQL gives the tests of package locks_test the statement Claim runs.
func (q Queue[T]) ClaimSQL(n int) (string, []any, error) { return q.claimSQL(n) }

// Validate gives the tests the validation every call makes of its options.
func Validate(o Options) error { return o.validate() }

// ValidateStrength and ValidateWait give the tests the check of one field.
func ValidateStrength(s Strength) error { return s.validate() }
func ValidateWait(w WaitPolicy) error   { return w.validate() }

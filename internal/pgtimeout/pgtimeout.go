package pgtimeout

import (
	"fmt"
	"strconv"
	"time"
)

// Max is the longest timeout PostgreSQL accepts: 2147483647 ms.
const Max = time.Duration(1<<31-1) * time.Millisecond

// Millis is d rounded up to whole milliseconds, so that a sub-millisecond
// bound does not become 0, which PostgreSQL reads as "no timeout". ok is
// false when d is not a bound the server can hold: d <= 0, or d > Max.
// Rounding up never passes Max, and nothing overflows for any d.
func Millis(d time.Duration) (ms int64, ok bool) {
	if d <= 0 || d > Max {
		return 0, false
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond), true
}

// Setting is d as a setting value in milliseconds with its unit ("250ms"),
// and whether d is a bound the server can hold (see [Millis]).
func Setting(d time.Duration) (string, bool) {
	ms, ok := Millis(d)
	if !ok {
		return "", false
	}
	return strconv.FormatInt(ms, 10) + "ms", true
}

// Check returns an error naming field when d is an explicit timeout the
// server cannot hold: negative, or longer than [Max]. Zero is "not set" and
// passes. Callers wrap the error with their package's bad-input sentinel.
func Check(field string, d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s is negative (%v)", field, d)
	case d > Max:
		return fmt.Errorf("%s is %v, beyond PostgreSQL's limit of %v (2147483647 ms); use 0 to leave the server's setting", field, d, Max)
	}
	return nil
}

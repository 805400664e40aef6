// Package invalid builds the error txkit's packages return for bad input:
// one error that lists every problem found, whose text starts with the
// package's bad-input sentinel and which matches that sentinel with
// errors.Is. Each package has one such sentinel, ErrInvalid, and reports
// a nil function, a nil database and impossible options through it.
package invalid

import (
	"errors"
	"fmt"
	"strings"
)

// Error is bad input: the problems found, matching Sentinel.
type Error struct {
	Sentinel error
	Problems []string
}

// Error says every problem at once: "locks: invalid input: a; b".
func (e *Error) Error() string {
	return e.Sentinel.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Is makes errors.Is(err, Sentinel) true.
func (e *Error) Is(target error) bool { return target == e.Sentinel }

// Errorf is one problem, formatted as fmt.Sprintf does.
func Errorf(sentinel error, format string, args ...any) error {
	return &Error{Sentinel: sentinel, Problems: []string{fmt.Sprintf(format, args...)}}
}

// Problems collects what is wrong with an input, to report it all in one
// error. The zero value is empty and ready to use.
type Problems struct{ list []string }

// Add records one problem, formatted as fmt.Sprintf does.
func (p *Problems) Add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// AddErr records err's problems, if err is not nil: the problems of an
// [*Error] one by one, any other error as its text.
func (p *Problems) AddErr(err error) {
	if err == nil {
		return
	}
	var e *Error
	if errors.As(err, &e) {
		p.list = append(p.list, e.Problems...)
		return
	}
	p.list = append(p.list, err.Error())
}

// Err is nil if no problem was recorded, and otherwise one error listing
// them all that matches sentinel.
func (p *Problems) Err(sentinel error) error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Sentinel: sentinel, Problems: p.list}
}

// Package purpose marks a context whose connection acquisitions are held on
// purpose: a session advisory lock, a leader's campaign. The pool package
// reads the mark to exempt such connections from leak reports and to name
// them when Close finds them still held; packages that hold connections on
// purpose set it without depending on the pool package.
package purpose

import "context"

type key struct{}

// Mark returns ctx marked with label ("held on purpose" when empty).
func Mark(ctx context.Context, label string) context.Context {
	if label == "" {
		label = "held on purpose"
	}
	return context.WithValue(ctx, key{}, label)
}

// Label is the label ctx was marked with, and whether it was.
func Label(ctx context.Context) (string, bool) {
	l, ok := ctx.Value(key{}).(string)
	return l, ok
}

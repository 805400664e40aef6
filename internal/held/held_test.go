package held_test

import (
	"context"
	"testing"

	"github.com/txkit/txkit/internal/held"
)

func TestLabel(t *testing.T) {
	if _, ok := held.Label(context.Background()); ok {
		t.Fatal("an unmarked ctx reports a label")
	}
	if l, ok := held.Label(held.OnPurpose(context.Background(), "lock jobs")); !ok || l != "lock jobs" {
		t.Fatalf("Label = %q, %v", l, ok)
	}
	if l, _ := held.Label(held.OnPurpose(context.Background(), "")); l != "held on purpose" {
		t.Fatalf("empty label became %q", l)
	}
}

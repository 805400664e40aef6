package purpose_test

import (
	"context"
	"testing"

	"github.com/txkit/txkit/internal/purpose"
)

func TestLabel(t *testing.T) {
	if _, ok := purpose.Label(context.Background()); ok {
		t.Fatal("an unmarked ctx reports a label")
	}
	if l, ok := purpose.Label(purpose.Mark(context.Background(), "lock jobs")); !ok || l != "lock jobs" {
		t.Fatalf("Label = %q, %v", l, ok)
	}
	if l, _ := purpose.Label(purpose.Mark(context.Background(), "")); l != "held on purpose" {
		t.Fatalf("empty label became %q", l)
	}
}

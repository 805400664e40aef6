package main

import (
	"context"
	"testing"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRun(t *testing.T) {
	if err := run(context.Background(), pgtest.NewDatabase(t)); err != nil {
		t.Fatal(err)
	}
}

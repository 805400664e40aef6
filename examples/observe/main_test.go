package main

import (
	"strings"
	"testing"
	"time"

	"github.com/txkit/txkit/tests/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRun runs the example briefly and checks that its report has every
// section, with transactions and lock waits recorded.
func TestRun(t *testing.T) {
	var out strings.Builder
	err := run(t.Context(), config{DSN: pgtest.NewDatabase(t), Workers: 6, Conns: 2, Accounts: 2, Duration: time.Second}, &out)
	if err != nil {
		t.Fatal(err)
	}
	report := out.String()
	t.Log(report)
	for _, want := range []string{"the retry histogram", "retries by SQLSTATE", "advisory lock wait time", "pending requests under load"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Count(report, "(nothing recorded)") > 0 {
		t.Errorf("a histogram is empty:\n%s", report)
	}
}

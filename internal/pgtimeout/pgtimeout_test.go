package pgtimeout_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/txkit/txkit/internal/pgtimeout"
)

func TestMillis(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		ms   int64
		okay bool
	}{
		{0, 0, false},
		{-time.Second, 0, false},
		{math.MinInt64, 0, false},
		{1, 1, true},
		{time.Millisecond, 1, true},
		{time.Millisecond + 1, 2, true},
		{pgtimeout.Max, 1<<31 - 1, true},
		{pgtimeout.Max - 1, 1<<31 - 1, true},
		{pgtimeout.Max + 1, 0, false},
		{30 * 24 * time.Hour, 0, false},
		{math.MaxInt64, 0, false},
	} {
		ms, ok := pgtimeout.Millis(c.d)
		if ms != c.ms || ok != c.okay {
			t.Errorf("Millis(%d) = %d, %v; want %d, %v", c.d, ms, ok, c.ms, c.okay)
		}
	}
}

func TestSetting(t *testing.T) {
	if s, ok := pgtimeout.Setting(1500 * time.Microsecond); s != "2ms" || !ok {
		t.Errorf("Setting(1.5ms) = %q, %v", s, ok)
	}
	if s, ok := pgtimeout.Setting(math.MaxInt64); s != "" || ok {
		t.Errorf("Setting(MaxInt64) = %q, %v", s, ok)
	}
}

func TestCheck(t *testing.T) {
	if err := pgtimeout.Check("X", 0); err != nil {
		t.Errorf("Check(0) = %v", err)
	}
	if err := pgtimeout.Check("X", pgtimeout.Max); err != nil {
		t.Errorf("Check(Max) = %v", err)
	}
	for _, d := range []time.Duration{-1, pgtimeout.Max + 1, math.MaxInt64} {
		err := pgtimeout.Check("LockTimeout", d)
		if err == nil || !strings.Contains(err.Error(), "LockTimeout") {
			t.Errorf("Check(%d) = %v, want an error naming the field", d, err)
		}
	}
}

package pool

import (
	"cmp"
	"context"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reportLeaks reports, once each, connections held longer than threshold.
func (t *tracker) reportLeaks(threshold time.Duration) {
	now := clock()
	var found []*holder
	t.mu.Lock()
	for c, h := range t.held {
		if !h.reported && h.label == "" && now-h.since > threshold && !gone(c) {
			h.reported = true
			found = append(found, h)
		}
	}
	t.mu.Unlock()
	sortHolders(found)
	for _, h := range found {
		d := h.describe(now)
		attrs := []slog.Attr{slog.Duration("held", d.Held), slog.Duration("threshold", threshold), slog.Uint64("pid", uint64(d.PID))}
		if d.Stack != "" {
			attrs = append(attrs, slog.String("stack", d.Stack))
		}
		t.log.LogAttrs(context.Background(), slog.LevelWarn, "pool: connection held longer than the leak threshold", attrs...)
	}
}

func sortHolders(list []*holder) {
	slices.SortFunc(list, func(a, b *holder) int { return cmp.Compare(a.since, b.since) })
}

// formatStack renders the caller's frames of a captured stack, leaving out
// the runtime's, pgxpool's and this package's own.
func formatStack(pcs []uintptr) string {
	if len(pcs) == 0 {
		return ""
	}
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if !internalFrame(f.Function) {
			b.WriteString(f.Function)
			b.WriteString("\n\t")
			b.WriteString(f.File)
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(f.Line))
			b.WriteByte('\n')
		}
		if !more {
			break
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func internalFrame(fn string) bool {
	for _, p := range []string{"runtime.", "github.com/jackc/pgx/v5/pgxpool.", "github.com/jackc/pgx/v5/multitracer.", "github.com/txkit/txkit/pool."} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

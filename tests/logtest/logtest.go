package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Signal is a slog.Handler that passes every record to Handler and then,
// for a record whose message is Msg, sends on Ch. Give Ch room for every
// such record the test does not receive, or the logging call blocks.
type Signal struct {
	slog.Handler
	Msg string
	Ch  chan<- struct{}
}

// Handle passes r to the wrapped handler and signals if r's message is Msg.
func (h Signal) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Message == h.Msg {
		h.Ch <- struct{}{}
	}
	return err
}

// WithAttrs keeps the signal on the logger that logger.With makes: the
// embedded handler's own method would return a handler without it.
func (h Signal) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(attrs)
	return h
}

// WithGroup keeps the signal on the logger that logger.WithGroup makes.
func (h Signal) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

// Records parses out, written by a slog.JSONHandler, as one JSON record
// per line; a line that is not one record is an error that quotes it.
func Records(out string) ([]map[string]any, error) {
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, fmt.Errorf("one structured record per line: %q: %w", line, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// Buffer is a logger's output that goroutines may write while the test
// reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

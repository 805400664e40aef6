package logkeys_test

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/txkit/txkit/internal/logkeys"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// An error is logged as its text under "error"; no error adds nothing.
func TestErr(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	l.LogAttrs(t.Context(), slog.LevelInfo, logkeys.TxnPrefix+"x", slog.String(logkeys.Name, "n"), logkeys.Err(nil))
	l.LogAttrs(t.Context(), slog.LevelInfo, logkeys.AdvisoryPrefix+"y", slog.String(logkeys.Name, "n"), logkeys.Err(errors.New("boom")))
	require.Equal(t, "level=INFO msg=\"txn: x\" name=n\nlevel=INFO msg=\"advisory: y\" name=n error=boom\n", buf.String())
}

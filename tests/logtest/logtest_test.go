package logtest_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/tests/logtest"
)

func Example() {
	var buf bytes.Buffer
	done := make(chan struct{}, 1)
	logger := slog.New(logtest.Signal{Handler: slog.NewJSONHandler(&buf, nil), Msg: "done", Ch: done})
	logger.Info("working", "step", 1)
	logger.Info("done")
	<-done
	recs, err := logtest.Records(buf.String())
	if err != nil {
		panic(err)
	}
	for _, rec := range recs {
		fmt.Println(rec["msg"])
	}
	// Output:
	// working
	// done
}

// Only a record with the message signals, once per record.
func TestSignalOnlyOnItsMessage(t *testing.T) {
	t.Parallel()
	ch := make(chan struct{}, 3)
	logger := slog.New(logtest.Signal{Handler: slog.NewTextHandler(io.Discard, nil), Msg: "this", Ch: ch})
	logger.Info("that")
	logger.Info("this")
	logger.Info("this")
	require.Len(t, ch, 2)
}

// A logger derived with With or WithGroup still signals.
func TestSignalSurvivesWithAndWithGroup(t *testing.T) {
	t.Parallel()
	ch := make(chan struct{}, 2)
	logger := slog.New(logtest.Signal{Handler: slog.NewTextHandler(io.Discard, nil), Msg: "this", Ch: ch})
	logger.With("k", "v").Info("this")
	logger.WithGroup("g").Info("this")
	require.Len(t, ch, 2)
}

// A line that is not one JSON record is an error that quotes it.
func TestRecordsRejectsALineThatIsNotOneRecord(t *testing.T) {
	t.Parallel()
	recs, err := logtest.Records("{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n")
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.Equal(t, "b", recs[1]["msg"])
	_, err = logtest.Records("{\"msg\":\"a\"}\nlevel=INFO msg=b\n")
	require.ErrorContains(t, err, `"level=INFO msg=b\n"`)
}

// Goroutines may write a Buffer while it is read; nothing written is lost.
func TestBufferConcurrentWrites(t *testing.T) {
	t.Parallel()
	var buf logtest.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				logger.Info("line")
				_ = buf.String()
			}
		})
	}
	wg.Wait()
	recs, err := logtest.Records(buf.String())
	require.NoError(t, err)
	require.Len(t, recs, 400)
}

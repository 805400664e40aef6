package isolation_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/txkit/txkit/isolation"
)

var allLevels = []isolation.Level{
	isolation.Default,
	isolation.ReadCommitted,
	isolation.RepeatableRead,
	isolation.Serializable,
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]isolation.Level{
		"serializable":     isolation.Serializable,
		"REPEATABLE READ":  isolation.RepeatableRead,
		"repeatable_read":  isolation.RepeatableRead,
		"read uncommitted": isolation.ReadCommitted,
		"Read-Committed":   isolation.ReadCommitted,
		"":                 isolation.Default,
		"default":          isolation.Default,
		// Values read from files and environment variables carry line ends.
		" serializable\r\n": isolation.Serializable,
		"repeatable\tread":  isolation.RepeatableRead,
	} {
		got, err := isolation.Parse(in)
		require.NoError(t, err, "Parse(%q)", in)
		require.Equal(t, want, got, "Parse(%q)", in)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"serialisable", "read", "42", "read committed read", "uncommitted"} {
		_, err := isolation.Parse(in)
		require.ErrorIs(t, err, isolation.ErrUnknownLevel, "Parse(%q)", in)
		require.Contains(t, err.Error(), in, "the error should quote the input")
	}
}

func TestStringRoundTripsThroughParse(t *testing.T) {
	t.Parallel()
	for _, l := range allLevels {
		got, err := isolation.Parse(l.String())
		require.NoError(t, err, "Parse(%q)", l.String())
		require.Equal(t, l, got)
	}
}

func TestTxIsoLevel(t *testing.T) {
	t.Parallel()
	for l, want := range map[isolation.Level]pgx.TxIsoLevel{
		isolation.Default:        "",
		isolation.ReadCommitted:  pgx.ReadCommitted,
		isolation.RepeatableRead: pgx.RepeatableRead,
		isolation.Serializable:   pgx.Serializable,
	} {
		require.Equal(t, want, l.TxIsoLevel(), "%v", l)
		back, err := isolation.FromTxIsoLevel(want)
		require.NoError(t, err)
		require.Equal(t, l, back, "FromTxIsoLevel(%q)", want)
	}

	got, err := isolation.FromTxIsoLevel(pgx.ReadUncommitted)
	require.NoError(t, err)
	require.Equal(t, isolation.ReadCommitted, got, "PostgreSQL runs READ UNCOMMITTED as READ COMMITTED")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, l := range allLevels {
		require.NoError(t, l.Validate(), "%v", l)
	}
	for _, l := range []isolation.Level{9, -1} {
		err := l.Validate()
		require.ErrorIs(t, err, isolation.ErrUnknownLevel, "%v", l)
	}
	require.Equal(t, "Level(9)", isolation.Level(9).String())
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	for _, l := range allLevels {
		text, err := l.MarshalText()
		require.NoError(t, err)
		var back isolation.Level
		require.NoError(t, back.UnmarshalText(text), "UnmarshalText(%q)", text)
		require.Equal(t, l, back, "through %q", text)
	}

	_, err := isolation.Level(9).MarshalText()
	require.ErrorIs(t, err, isolation.ErrUnknownLevel, "an invalid level must not be written to a config file")

	// A failed UnmarshalText must leave the value alone: a config loader
	// that reports the error should not also have changed the setting.
	l := isolation.Serializable
	require.ErrorIs(t, l.UnmarshalText([]byte("serialisable")), isolation.ErrUnknownLevel)
	require.Equal(t, isolation.Serializable, l)
}

// TestJSONConfig uses the text methods the way a configuration file does.
func TestJSONConfig(t *testing.T) {
	t.Parallel()
	type config struct {
		Isolation isolation.Level `json:"isolation"`
	}
	var c config
	require.NoError(t, json.Unmarshal([]byte(`{"isolation": "Repeatable Read"}`), &c))
	require.Equal(t, isolation.RepeatableRead, c.Isolation)

	out, err := json.Marshal(config{Isolation: isolation.Serializable})
	require.NoError(t, err)
	require.JSONEq(t, `{"isolation": "serializable"}`, string(out))

	err = json.Unmarshal([]byte(`{"isolation": "snapshot isolation"}`), &c)
	require.ErrorIs(t, err, isolation.ErrUnknownLevel)
}

func TestStronger(t *testing.T) {
	t.Parallel()
	require.True(t, isolation.Serializable.Stronger(isolation.RepeatableRead))
	require.True(t, isolation.RepeatableRead.Stronger(isolation.ReadCommitted))
	require.True(t, isolation.RepeatableRead.Stronger(isolation.Default))
	require.False(t, isolation.Default.Stronger(isolation.ReadCommitted), "Default is taken as READ COMMITTED")
	require.False(t, isolation.ReadCommitted.Stronger(isolation.Default))
	require.False(t, isolation.Serializable.Stronger(isolation.Serializable))
	require.False(t, isolation.Level(9).Stronger(isolation.Serializable), "an out-of-range Level is not a level")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"serializable", "REPEATABLE READ", "repeatable_read", "read uncommitted",
		"Read-Committed", "", "default", "serialisable", "read", "42", " \t-_\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := isolation.Parse(s)
		if err != nil {
			if !errors.Is(err, isolation.ErrUnknownLevel) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrUnknownLevel", s, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %v, which does not validate: %v", s, l, err)
		}
		back, err := isolation.Parse(l.String())
		if err != nil || back != l {
			t.Fatalf("Parse(%q) = %v, but Parse(%q) = %v, %v", s, l, l.String(), back, err)
		}
	})
}

package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/require"
)

func TestWarn(t *testing.T) {
	t.Run("slog", func(t *testing.T) {
		var buf bytes.Buffer
		l := NewWatermillLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
		Warn(l.With(watermill.LogFields{"component": "broker"}), "look", watermill.LogFields{"b": 2, "a": 1})
		require.Equal(t, "level=WARN msg=look component=broker a=1 b=2\n", dropTime(buf.String()))
		buf.Reset()
		l.Info("hidden", nil) // Watermill's Info is Sous's Debug
		require.Empty(t, buf.String())
	})
	t.Run("a logger that cannot warn logs an error", func(t *testing.T) {
		l := watermill.NewCaptureLogger()
		Warn(l, "look", watermill.LogFields{"a": 1})
		require.True(t, l.Has(watermill.CapturedMessage{Level: watermill.ErrorLogLevel, Fields: watermill.LogFields{"a": 1}, Msg: "look"}))
	})
}

// dropTime removes slog's leading time=... field.
func dropTime(s string) string {
	if rest, ok := strings.CutPrefix(s, "time="); ok {
		if _, after, ok := strings.Cut(rest, " "); ok {
			return after
		}
	}
	return s
}

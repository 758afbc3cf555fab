package pipeline

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// NewWatermillLogger adapts slog for Watermill (see watermillLogger).
func NewWatermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return &watermillLogger{log: l, inner: watermill.NewSlogLoggerWithLevelMapping(l,
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})}
}

// watermillLogger adapts slog for Watermill. Watermill narrates every
// handler start and stop at Info, which is debugging detail for a Sous
// operator, so Info is logged at Debug. Every message it handles is
// traced: the adapter looks at the level before it builds the fields,
// which Watermill's own adapter does after (an allocation per field per
// message, on the hot path).
type watermillLogger struct {
	log   *slog.Logger
	inner watermill.LoggerAdapter
}

func (w *watermillLogger) enabled(level slog.Level) bool {
	return w.log.Enabled(context.Background(), level)
}

// Error implements watermill.LoggerAdapter.
func (w *watermillLogger) Error(msg string, err error, fields watermill.LogFields) {
	if w.enabled(slog.LevelError) {
		w.inner.Error(msg, err, fields)
	}
}

// Info implements watermill.LoggerAdapter (at Debug).
func (w *watermillLogger) Info(msg string, fields watermill.LogFields) {
	if w.enabled(slog.LevelDebug) {
		w.inner.Info(msg, fields)
	}
}

// Debug implements watermill.LoggerAdapter.
func (w *watermillLogger) Debug(msg string, fields watermill.LogFields) {
	if w.enabled(slog.LevelDebug) {
		w.inner.Debug(msg, fields)
	}
}

// Trace implements watermill.LoggerAdapter.
func (w *watermillLogger) Trace(msg string, fields watermill.LogFields) {
	if w.enabled(watermill.LevelTrace) {
		w.inner.Trace(msg, fields)
	}
}

// With implements watermill.LoggerAdapter.
func (w *watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &watermillLogger{log: w.log, inner: w.inner.With(fields)}
}

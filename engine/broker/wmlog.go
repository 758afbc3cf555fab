package broker

import (
	"context"
	"log/slog"
	"slices"

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
	return &watermillLogger{log: w.log.With(slogArgs(fields)...), inner: w.inner.With(fields)}
}

// Warn logs at slog's Warn level, which Watermill's adapter has not: the
// brokers warn through it (see Warn).
func (w *watermillLogger) Warn(msg string, fields watermill.LogFields) {
	if w.enabled(slog.LevelWarn) {
		w.log.Warn(msg, slogArgs(fields)...)
	}
}

// slogArgs are fields as slog's key-value arguments, in key order.
func slogArgs(fields watermill.LogFields) []any {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, fields[k])
	}
	return args
}

// warner is a Watermill logger that can also warn.
type warner interface {
	Warn(msg string, fields watermill.LogFields)
}

// Warn logs msg at Warn on a logger that can (NewWatermillLogger's),
// else at Error: never at Info, which Sous logs at Debug.
func Warn(l watermill.LoggerAdapter, msg string, fields watermill.LogFields) {
	if w, ok := l.(warner); ok {
		w.Warn(msg, fields)
		return
	}
	l.Error(msg, nil, fields)
}

package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestStatsJSON: the percentiles are written in milliseconds, as p50_ms,
// p95_ms and p99_ms (never as Go's nanoseconds), and read back to the
// same durations.
func TestStatsJSON(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		p50, p95, p99 time.Duration
		want          string // the durations in the JSON
	}{
		{name: "none", want: `"p50_ms": 0, "p95_ms": 0, "p99_ms": 0`},
		{name: "whole milliseconds", p50: 51 * time.Millisecond, p95: 95 * time.Millisecond, p99: 2 * time.Second,
			want: `"p50_ms": 51, "p95_ms": 95, "p99_ms": 2000`},
		{name: "microseconds, as the store keeps them", p50: 1500 * time.Microsecond, p95: 1234 * time.Microsecond, p99: time.Microsecond,
			want: `"p50_ms": 1.5, "p95_ms": 1.234, "p99_ms": 0.001`},
		{name: "an hour", p50: time.Hour, p95: time.Hour, p99: time.Hour,
			want: `"p50_ms": 3600000, "p95_ms": 3600000, "p99_ms": 3600000`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := store.Stats{Recipe: "orders", Since: since, Runs: 3, ByStatus: map[string]int64{"succeeded": 3}, SuccessRate: 1,
				P50: tc.p50, P95: tc.p95, P99: tc.p99, Retries: 2, RateLimited: 1,
				StepFailures: []store.FailureCount{}, ConnectorFailures: []store.FailureCount{{Key: "http.request", Reason: "timeout", Count: 1}}}
			raw, err := json.Marshal(st)
			require.NoError(t, err)
			require.JSONEq(t, `{"recipe": "orders", "since": "2026-03-01T12:00:00Z", "runs": 3, "by_status": {"succeeded": 3},
				"success_rate": 1, `+tc.want+`, "retries": 2, "rate_limited": 1, "step_failures": [],
				"connector_failures": [{"key": "http.request", "reason": "timeout", "count": 1}]}`, string(raw))

			// a pointer marshals the same
			fromPtr, err := json.Marshal(&st)
			require.NoError(t, err)
			require.JSONEq(t, string(raw), string(fromPtr))

			var back store.Stats
			require.NoError(t, json.Unmarshal(raw, &back))
			require.Equal(t, st, back)
		})
	}
	t.Run("bad JSON is an error", func(t *testing.T) {
		var s store.Stats
		require.Error(t, json.Unmarshal([]byte(`{"p50_ms": "fast"}`), &s))
	})
}

func TestMilliseconds(t *testing.T) {
	tests := []struct {
		d  time.Duration
		ms float64
	}{
		{0, 0},
		{time.Millisecond, 1},
		{1500 * time.Microsecond, 1.5},
		{time.Nanosecond, 1e-6},
		{90 * time.Second, 90000},
	}
	for _, tc := range tests {
		t.Run(tc.d.String(), func(t *testing.T) {
			require.Equal(t, tc.ms, store.Milliseconds(tc.d))
		})
	}
}

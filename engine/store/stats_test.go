package store_test

import (
	"encoding/json"
	"fmt"
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
				StepFailures: []store.FailureCount{}, ConnectorFailures: []store.FailureCount{{Key: "http.request", Reason: "timeout", Count: 1}},
				Actions: []store.ActionCount{{Action: "http.request", Failed: 1, Retries: 2, RateLimited: 1}}}
			raw, err := json.Marshal(st)
			require.NoError(t, err)
			require.JSONEq(t, `{"recipe": "orders", "since": "2026-03-01T12:00:00Z", "runs": 3, "by_status": {"succeeded": 3},
				"success_rate": 1, `+tc.want+`, "retries": 2, "rate_limited": 1, "step_failures": [],
				"connector_failures": [{"key": "http.request", "reason": "timeout", "count": 1}],
				"actions": [{"action": "http.request", "failed": 1, "retries": 2, "rate_limited": 1}]}`, string(raw))

			// a pointer marshals the same
			fromPtr, err := json.Marshal(&st)
			require.NoError(t, err)
			require.JSONEq(t, string(raw), string(fromPtr))

			var back store.Stats
			require.NoError(t, json.Unmarshal(raw, &back))
			require.Equal(t, st, back)
		})
	}
	// what is unknown is null, not 0: a success rate of no run that
	// succeeded, failed or went dead, percentiles of no succeeded run
	unknown := []struct {
		name     string
		byStatus map[string]int64
		rate     float64
		want     string
	}{
		{name: "no run", byStatus: map[string]int64{},
			want: `"success_rate": null, "p50_ms": null, "p95_ms": null, "p99_ms": null`},
		{name: "filtered runs only", byStatus: map[string]int64{"filtered": 2},
			want: `"success_rate": null, "p50_ms": null, "p95_ms": null, "p99_ms": null`},
		{name: "failed and dead runs only", byStatus: map[string]int64{"failed": 1, "dead": 1},
			want: `"success_rate": 0, "p50_ms": null, "p95_ms": null, "p99_ms": null`},
		{name: "a succeeded run", byStatus: map[string]int64{"succeeded": 1, "failed": 1}, rate: 0.5,
			want: `"success_rate": 0.5, "p50_ms": 0, "p95_ms": 0, "p99_ms": 0`},
	}
	for _, tc := range unknown {
		t.Run(tc.name, func(t *testing.T) {
			var runs int64
			for _, n := range tc.byStatus {
				runs += n
			}
			st := store.Stats{Since: since, Runs: runs, ByStatus: tc.byStatus, SuccessRate: tc.rate,
				StepFailures: []store.FailureCount{}, ConnectorFailures: []store.FailureCount{}, Actions: []store.ActionCount{}}
			raw, err := json.Marshal(st)
			require.NoError(t, err)
			byStatus, err := json.Marshal(tc.byStatus)
			require.NoError(t, err)
			require.JSONEq(t, `{"since": "2026-03-01T12:00:00Z", "runs": `+fmt.Sprint(runs)+`, "by_status": `+string(byStatus)+`,
				`+tc.want+`, "retries": 0, "rate_limited": 0, "step_failures": [], "connector_failures": [], "actions": []}`, string(raw))
			var back store.Stats
			require.NoError(t, json.Unmarshal(raw, &back))
			require.Equal(t, st, back)
		})
	}
	t.Run("bad JSON is an error", func(t *testing.T) {
		var s store.Stats
		require.Error(t, json.Unmarshal([]byte(`{"p50_ms": "fast"}`), &s))
		require.Error(t, json.Unmarshal([]byte(`{"success_rate": "all"}`), &s))
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

package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/runner"
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
				Actions: []store.CallCount{{Action: "http.request", Calls: 3, Errors: 2, ErrorsByReason: map[string]int64{"timeout": 1, "rate_limited": 1},
					Failed: 1, Retries: 2, RateLimited: 1, Waited: 1500 * time.Millisecond}},
				Connections: []store.CallCount{{Connection: "api", Calls: 1, ErrorsByReason: map[string]int64{}}}}
			raw, err := json.Marshal(st)
			require.NoError(t, err)
			require.JSONEq(t, `{"recipe": "orders", "since": "2026-03-01T12:00:00Z", "runs": 3, "by_status": {"succeeded": 3},
				"success_rate": 1, `+tc.want+`, "retries": 2, "rate_limited": 1, "step_failures": [],
				"connector_failures": [{"key": "http.request", "reason": "timeout", "count": 1}],
				"actions": [{"action": "http.request", "calls": 3, "errors": 2, "errors_by_reason": {"timeout": 1, "rate_limited": 1},
					"failed": 1, "retries": 2, "rate_limited": 1, "waited_ms": 1500}],
				"connections": [{"connection": "api", "calls": 1, "errors": 0, "errors_by_reason": {}, "failed": 0, "retries": 0,
					"rate_limited": 0, "waited_ms": 0}]}`, string(raw))

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
				StepFailures: []store.FailureCount{}, ConnectorFailures: []store.FailureCount{}, Actions: []store.CallCount{}, Connections: []store.CallCount{}}
			raw, err := json.Marshal(st)
			require.NoError(t, err)
			byStatus, err := json.Marshal(tc.byStatus)
			require.NoError(t, err)
			require.JSONEq(t, `{"since": "2026-03-01T12:00:00Z", "runs": `+fmt.Sprint(runs)+`, "by_status": `+string(byStatus)+`,
				`+tc.want+`, "retries": 0, "rate_limited": 0, "step_failures": [], "connector_failures": [], "actions": [], "connections": []}`, string(raw))
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

// TestStatsCalls: the calls, errors by reason, rate-limited attempts and
// waits before retries, per action and per connection, of every step of
// the window's runs, those that succeeded at once included (they leave
// no run_steps row: the runs' records are counted).
func TestStatsCalls(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		ok := runner.Attempt{Number: 1, Duration: time.Millisecond}
		fail := func(reason string, delay time.Duration) runner.Attempt {
			return runner.Attempt{Error: "boom", Reason: reason, Retryable: delay > 0, Delay: delay}
		}
		post := func(status runner.Status, attempts ...runner.Attempt) *runner.StepResult {
			return &runner.StepResult{ID: "notify", Action: "slack.post_message", Connection: "slack-main", Status: status, Attempts: attempts}
		}
		sync := func(status runner.Status, attempts ...runner.Attempt) *runner.StepResult {
			return &runner.StepResult{ID: "sync", Action: "http.request", Connection: "crm", Status: status, Attempts: attempts}
		}
		run := func(id, recipe string, status runner.Status, ago time.Duration, steps ...*runner.StepResult) *store.Run {
			rec, err := json.Marshal(&runner.Result{RunID: id, Recipe: recipe, Status: status, Steps: steps})
			require.NoError(t, err)
			return &store.Run{ID: id, Recipe: recipe, EventID: "ev_" + id, Status: string(status), StartedAt: now.Add(-ago),
				FinishedAt: now.Add(-ago), Attempt: 1, Record: rec}
		}
		runs := []*store.Run{
			// at once
			run("run_1", "orders", runner.StatusSucceeded, time.Minute, post(runner.StatusSucceeded, ok), sync(runner.StatusSucceeded, ok)),
			// after a Retry-After of 2s on Slack and a backoff of 1s on the CRM
			run("run_2", "orders", runner.StatusSucceeded, time.Minute,
				post(runner.StatusSucceeded, fail("rate_limited", 2*time.Second), ok),
				sync(runner.StatusSucceeded, fail("server_error", time.Second), ok)),
			// failed after three attempts
			run("run_3", "orders", runner.StatusFailed, time.Minute,
				post(runner.StatusFailed, fail("rate_limited", 3*time.Second), fail("server_error", 500*time.Millisecond), fail("server_error", 0))),
			// a step on no connection, a skipped step
			run("run_4", "orders", runner.StatusSucceeded, time.Minute,
				&runner.StepResult{ID: "ping", Action: "http.request", Status: runner.StatusSucceeded, Attempts: []runner.Attempt{ok}},
				&runner.StepResult{ID: "notify", Action: "slack.post_message", Connection: "slack-main", Status: runner.StatusSkipped}),
			// failed before its call (a template error): no call
			run("run_5", "orders", runner.StatusFailed, time.Minute, sync(runner.StatusFailed)),
			// before the window
			run("run_old", "orders", runner.StatusSucceeded, 2*time.Hour, post(runner.StatusSucceeded, fail("timeout", time.Second), ok)),
			// another recipe
			run("run_nightly", "nightly", runner.StatusFailed, time.Minute, sync(runner.StatusFailed, fail("timeout", 0))),
			// no record
			{ID: "run_filtered", Recipe: "orders", EventID: "ev_f", Status: "filtered", StartedAt: now, FinishedAt: now, Attempt: 1},
		}
		for _, r := range runs {
			require.NoError(t, st.SaveRun(ctx, r))
		}

		slack := store.CallCount{Calls: 1 + 2 + 3, Errors: 1 + 3, ErrorsByReason: map[string]int64{"rate_limited": 2, "server_error": 2},
			RateLimited: 2, Retries: 1 + 2, Failed: 1, Waited: 2*time.Second + 3*time.Second + 500*time.Millisecond}
		crm := store.CallCount{Calls: 1 + 2, Errors: 1, ErrorsByReason: map[string]int64{"server_error": 1}, Retries: 1, Failed: 1, Waited: time.Second}
		named := func(c store.CallCount, action, conn string) store.CallCount {
			c.Action, c.Connection = action, conn
			return c
		}
		http := crm
		http.Calls++ // ping, on no connection

		s, err := st.Stats(ctx, "orders", now.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, []store.CallCount{named(slack, "slack.post_message", ""), named(http, "http.request", "")}, s.Actions,
			"worst first")
		require.Equal(t, []store.CallCount{named(slack, "", "slack-main"), named(crm, "", "crm")}, s.Connections)

		// every recipe: the nightly run's timeout too
		crm.Calls++
		crm.Errors++
		crm.Failed++
		crm.ErrorsByReason = map[string]int64{"server_error": 1, "timeout": 1}
		http = crm
		http.Calls++
		s, err = st.Stats(ctx, "", now.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, []store.CallCount{named(slack, "slack.post_message", ""), named(http, "http.request", "")}, s.Actions)
		require.Equal(t, []store.CallCount{named(slack, "", "slack-main"), named(crm, "", "crm")}, s.Connections)

		// the JSON of a count
		raw, err := json.Marshal(s.Connections[1])
		require.NoError(t, err)
		require.JSONEq(t, `{"connection": "crm", "calls": 4, "errors": 2, "errors_by_reason": {"server_error": 1, "timeout": 1},
			"rate_limited": 0, "retries": 1, "failed": 2, "waited_ms": 1000}`, string(raw))
	})
}

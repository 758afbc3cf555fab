package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// seedRuns stores runs in a fresh embedded store under a data dir.
func seedRuns(t *testing.T, runs ...*store.Run) string {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, dir)
	require.NoError(t, err)
	defer func() { read.Close(); write.Close() }()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	for _, r := range runs {
		r.FinishedAt = r.StartedAt.Add(r.Duration)
		require.NoError(t, st.SaveRun(ctx, r))
	}
	return dir
}

// TestRunsAndStatsOutput: the JSON of runs list, runs show and stats
// gives durations in milliseconds (duration_ms, p50_ms...), the text
// output as Go durations.
func TestRunsAndStatsOutput(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	data := seedRuns(t,
		&store.Run{ID: "run_a", Recipe: "orders", EventID: "ev_a", Status: "succeeded", StartedAt: now.Add(-time.Hour), Duration: 1500 * time.Microsecond, Attempt: 1},
		&store.Run{ID: "run_b", Recipe: "orders", EventID: "ev_b", Status: "succeeded", StartedAt: now.Add(-2 * time.Hour), Duration: 250 * time.Millisecond, Attempt: 1},
		&store.Run{ID: "run_c", Recipe: "orders", EventID: "ev_c", Status: "failed", StartedAt: now.Add(-3 * time.Hour), Duration: 2 * time.Second,
			ErrorStep: "call", Reason: "timeout", Error: "no answer", Attempt: 1, Retries: 2,
			Record: json.RawMessage(`{"run_id":"run_c","status":"failed","steps":[{"id":"call","action":"http.request","connection":"crm","status":"failed",` +
				`"reason":"timeout","attempts":[{"number":1,"error":"429","reason":"rate_limited","delay":2000000000},` +
				`{"number":2,"error":"no answer","reason":"timeout","delay":500000000},{"number":3,"error":"no answer","reason":"timeout"}]}]}`),
			Steps: []store.RunStep{{Step: "call", Action: "http.request", Status: "failed", Reason: "timeout", Attempts: 3, RateLimited: 1}}},
	)
	empty := seedRuns(t)
	tests := []struct {
		name string
		args []string
		// check reads stdout
		check func(t *testing.T, stdout string)
	}{
		{name: "runs list --json", args: []string{"runs", "list", "--data", data, "--json"}, check: func(t *testing.T, out string) {
			var runs []map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &runs))
			require.Len(t, runs, 3)
			for i, want := range []float64{1.5, 250, 2000} {
				require.Equal(t, want, runs[i]["duration_ms"], "%v", runs[i]["id"])
				require.NotContains(t, runs[i], "duration")
				require.NotContains(t, runs[i], "record", "the list leaves records out")
			}
		}},
		{name: "runs list --json with no runs", args: []string{"runs", "list", "--data", empty, "--json"}, check: func(t *testing.T, out string) {
			require.JSONEq(t, `[]`, out)
		}},
		{name: "runs list", args: []string{"runs", "list", "--data", data}, check: func(t *testing.T, out string) {
			require.Regexp(t, `RUN +RECIPE +STATUS +STARTED +DURATION +INPUT +ERROR`, out)
			require.Regexp(t, `run_a +orders +succeeded +\S+ \S+ +1.5ms`, out)
			require.Regexp(t, `run_b +orders +succeeded +\S+ \S+ +250ms`, out)
			require.Regexp(t, `run_c +orders +failed +\S+ \S+ +2s +- +call \(timeout\): no answer`, out, "no event stored: no input")
		}},
		{name: "runs show --json", args: []string{"runs", "show", "--data", data, "--json", "run_c"}, check: func(t *testing.T, out string) {
			var run map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &run))
			require.Equal(t, 2000.0, run["duration_ms"])
			require.NotContains(t, run, "duration")
			require.Equal(t, "run_c", run["record"].(map[string]any)["run_id"])
		}},
		{name: "stats --json", args: []string{"stats", "--data", data, "--json"}, check: func(t *testing.T, out string) {
			var s map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &s))
			// the succeeded runs: 1.5 ms and 250 ms
			require.Equal(t, 250.0, s["p50_ms"])
			require.Equal(t, 250.0, s["p95_ms"])
			require.Equal(t, 250.0, s["p99_ms"])
			for _, k := range []string{"p50", "p95", "p99"} {
				require.NotContains(t, s, k)
			}
			var st store.Stats
			require.NoError(t, json.Unmarshal([]byte(out), &st))
			require.Equal(t, 250*time.Millisecond, st.P50)
			// the calls per action and per connection
			require.Equal(t, []store.CallCount{{Action: "http.request", Calls: 3, Errors: 3,
				ErrorsByReason: map[string]int64{"rate_limited": 1, "timeout": 2}, RateLimited: 1, Retries: 2, Failed: 1,
				Waited: 2500 * time.Millisecond}}, st.Actions)
			require.Equal(t, []store.CallCount{{Connection: "crm", Calls: 3, Errors: 3,
				ErrorsByReason: map[string]int64{"rate_limited": 1, "timeout": 2}, RateLimited: 1, Retries: 2, Failed: 1,
				Waited: 2500 * time.Millisecond}}, st.Connections)
			require.Equal(t, []any{map[string]any{"connection": "crm", "calls": 3.0, "errors": 3.0,
				"errors_by_reason": map[string]any{"rate_limited": 1.0, "timeout": 2.0}, "rate_limited": 1.0, "retries": 2.0,
				"failed": 1.0, "waited_ms": 2500.0}}, s["connections"])
		}},
		{name: "stats", args: []string{"stats", "--data", data}, check: func(t *testing.T, out string) {
			require.Contains(t, out, "all recipes, last 24h: 3 runs, 2 succeeded, 1 failed, 0 filtered, 0 dead\n")
			require.Contains(t, out, "success rate 66.7%; duration p50 250ms, p95 250ms, p99 250ms; 2 retries, 1 rate-limited\n")
			require.Regexp(t, `by action:\n +action +calls +errors +rate-limited +retries +failed +waited +errors by reason\n`+
				` +http\.request +3 +3 +1 +2 +1 +2\.5s +timeout 2, rate_limited 1\n`, out)
			require.Regexp(t, `by connection:\n +connection +calls +errors +rate-limited +retries +failed +waited +errors by reason\n`+
				` +crm +3 +3 +1 +2 +1 +2\.5s +timeout 2, rate_limited 1\n`, out)
		}},
		{name: "stats of no run", args: []string{"stats", "--data", empty}, check: func(t *testing.T, out string) {
			require.Contains(t, out, "all recipes, last 24h: 0 runs")
			require.Contains(t, out, "success rate n/a (no run succeeded, failed or went dead); no succeeded run to time; 0 retries")
		}},
		{name: "stats --json of no run", args: []string{"stats", "--data", empty, "--json"}, check: func(t *testing.T, out string) {
			var s map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &s))
			for _, k := range []string{"success_rate", "p50_ms", "p95_ms", "p99_ms"} {
				require.Contains(t, s, k)
				require.Nil(t, s[k], k)
			}
		}},
		{name: "stats --since in days", args: []string{"stats", "--data", data, "--since", "1d"}, check: func(t *testing.T, out string) {
			require.Contains(t, out, "all recipes, last 1d: 3 runs")
		}},
		{name: "stats --since 90m", args: []string{"stats", "--data", data, "--since", "90m", "--recipe", "orders"}, check: func(t *testing.T, out string) {
			require.Contains(t, out, "orders, last 90m: 1 runs, 1 succeeded")
		}},
		{name: "runs list --since in days", args: []string{"runs", "list", "--data", data, "--since", "1d", "--json"}, check: func(t *testing.T, out string) {
			var runs []map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &runs))
			require.Len(t, runs, 3)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sous(t, "", tc.args...)
			require.Equal(t, 0, r.code, "%s", r)
			tc.check(t, r.stdout)
		})
	}
	for _, since := range []string{"soon", "0d", "-1h", "213504d"} {
		t.Run("stats --since "+since, func(t *testing.T) {
			r := sous(t, "", "stats", "--data", data, "--since", since)
			require.Equal(t, 2, r.code, "%s", r)
			require.Contains(t, r.stderr, "--since: \""+since+"\" is not a positive duration such as 24h or 7d")
		})
	}
	for _, flag := range []string{"--since=-1d", "--until=-2h"} {
		t.Run("runs list "+flag, func(t *testing.T) {
			r := sous(t, "", "runs", "list", "--data", data, flag)
			require.Equal(t, 2, r.code, "%s", r)
			require.Contains(t, r.stderr, "not a negative one")
		})
	}
}

// TestRunsShowZapierDeliveries: runs show lists the run's Zapier
// deliveries as they stand now, each target as its scheme and host only.
func TestRunsShowZapierDeliveries(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	data := seedRuns(t, &store.Run{ID: "run_z", Recipe: "orders", EventID: "ev_z", Status: "succeeded", StartedAt: now, Attempt: 1,
		Record: json.RawMessage(`{"run_id":"run_z","status":"succeeded"}`)})
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, data)
	require.NoError(t, err)
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.MigrateZapier(ctx))
	_, _, err = st.AddZapierHook(ctx, &store.ZapierHook{ID: "hk1", Event: "order", Target: "https://hooks.zapier.test/hooks/catch/123/zap-secret/", CreatedAt: now})
	require.NoError(t, err)
	_, err = st.EnqueueZapier(ctx, &store.ZapierItem{ID: "it1", Event: "order", RunID: "run_z", Body: []byte(`{"id":"it1"}`), CreatedAt: now},
		"notify", func(*store.ZapierHook) bool { return true }, func(hook string) string { return "it1/" + hook })
	require.NoError(t, err)
	read.Close()
	write.Close()

	r := sous(t, "", "runs", "show", "--data", data, "run_z")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "zapier deliveries\n")
	require.Regexp(t, `notify +order to https://hooks\.zapier\.test/…: pending, 0 attempts`, r.stdout)
	r = sous(t, "", "runs", "show", "--data", data, "--json", "run_z")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, `"zapier_deliveries"`)
	for _, out := range []string{r.stdout, sous(t, "", "runs", "show", "--data", data, "run_z").stdout} {
		require.NotContains(t, out, "zap-secret", "a hook URL's path is the Zap's secret")
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// `runs show` prints a run to read: times, durations such as 1.2s, each
// step with its attempts, status, error, inputs and outputs; --json
// prints durations in milliseconds and no unset time.
func TestRunsShow(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	record := fmt.Sprintf(`{"run_id":"run_f","recipe":"orders","status":"failed","vars":{"total":250},
		"steps":[
		{"id":"fetch","action":"http.request","status":"succeeded","input":{"url":"https://api.test/x?a=1&b=2"},"output":{"status":200,"json":{"id":7}},
		 "attempts":[{"number":1,"started":%q,"duration":120000000}]},
		{"id":"call","action":"http.request","status":"failed","reason":"server_error","input":{"json":{"text":"%s"}},"error":"http POST https://hooks.test/x: 503 Service Unavailable",
		 "attempts":[{"number":1,"started":%q,"duration":1500000,"error":"503","reason":"server_error","retryable":true,"delay":2000000000},
		             {"number":2,"started":%q,"duration":1200000000,"error":"503 again","reason":"server_error"}]}],
		"error":{"step":"call","message":"503","reason":"server_error"},
		"started":%q,"duration":3321500000,"retry_at":"0001-01-01T00:00:00Z"}`,
		at.Format(time.RFC3339Nano), strings.Repeat("x", 400), at.Add(120*time.Millisecond).Format(time.RFC3339Nano),
		at.Add(2122*time.Millisecond).Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
	data := seedRuns(t,
		&store.Run{ID: "run_f", Recipe: "orders", EventID: "ev_f", Status: "failed", StartedAt: at, Duration: 3321500 * time.Microsecond,
			ErrorStep: "call", Reason: "server_error", Error: "503", Attempt: 1, Retries: 1, Record: json.RawMessage(record)},
		&store.Run{ID: "run_s", Recipe: "orders", EventID: "ev_s", Status: "succeeded", StartedAt: at, Duration: 850 * time.Microsecond, Attempt: 1},
	)
	local := func(d time.Duration, layout string) string { return at.Add(d).Local().Format(layout) }
	tests := []struct {
		name    string
		args    []string
		want    []string
		without []string
	}{
		{name: "a failed run with its record", args: []string{"runs", "show", "--data", data, "run_f"},
			want: []string{
				"run       run_f\nrecipe    orders\nevent     ev_f\ninput     -\nstatus    failed: call (server_error): 503\n",
				"started   " + local(0, "2006-01-02 15:04:05.000 MST") + "\n",
				"finished  " + local(3321500*time.Microsecond, "2006-01-02 15:04:05.000 MST") + "\n",
				"duration  3.32s\nattempt   1 (1 retries)\nvars      {\"total\":250}\n",
				"\nsteps\n  fetch  http.request  succeeded  1 attempt  120ms\n",
				"    input   {\"url\":\"https://api.test/x?a=1&b=2\"}\n    output  {\"json\":{\"id\":7},\"status\":200}\n",
				"    attempt 1  " + local(0, "15:04:05.000") + "  120ms  ok\n",
				"  call  http.request  failed (server_error)  2 attempts  1.2s\n",
				"    input   {\"json\":{\"text\":\"" + strings.Repeat("x", 300-len(`{"json":{"text":"`)) + "…\n",
				"    error   http POST https://hooks.test/x: 503 Service Unavailable\n",
				"    attempt 1  " + local(120*time.Millisecond, "15:04:05.000") + "  1.5ms  error (server_error, retryable): 503; next attempt in 2s\n",
				"    attempt 2  " + local(2122*time.Millisecond, "15:04:05.000") + "  1.2s  error (server_error): 503 again\n",
			},
			without: []string{"0001-01-01", "1500000", "{\n"}},
		{name: "a run without a record", args: []string{"runs", "show", "--data", data, "run_s"},
			want: []string{"status    succeeded\n", "duration  850µs\nattempt   1\nrecord    none\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sous(t, "", tc.args...)
			require.Equal(t, 0, r.code, "%s", r)
			for _, s := range tc.want {
				require.Contains(t, r.stdout, s, "%s", r)
			}
			for _, s := range tc.without {
				require.NotContains(t, r.stdout, s, "%s", r)
			}
		})
	}
	t.Run("--json", func(t *testing.T) {
		r := sous(t, "", "runs", "show", "--data", data, "--json", "run_f")
		require.Equal(t, 0, r.code, "%s", r)
		require.NotContains(t, r.stdout, "0001-01-01", "no unset time")
		var got struct {
			DurationMS float64 `json:"duration_ms"`
			Record     struct {
				DurationMS float64 `json:"duration_ms"`
				Steps      []struct {
					Attempts []map[string]any `json:"attempts"`
				} `json:"steps"`
			} `json:"record"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
		require.Equal(t, 3321.5, got.DurationMS)
		require.Equal(t, 3321.5, got.Record.DurationMS)
		require.Equal(t, 1.5, got.Record.Steps[1].Attempts[0]["duration_ms"])
		require.Equal(t, 2000.0, got.Record.Steps[1].Attempts[0]["delay_ms"])
		require.NotContains(t, got.Record.Steps[1].Attempts[0], "duration")
	})
}

func TestShowDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{850*time.Microsecond + 400, "850µs"},
		{1500 * time.Microsecond, "1.5ms"},
		{250*time.Millisecond + 300*time.Microsecond, "250ms"},
		{1234567 * time.Microsecond, "1.23s"},
		{123*time.Second + 400*time.Millisecond, "2m3s"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			require.Equal(t, tc.want, showDuration(tc.d))
		})
	}
}

// `sous run --json` prints the record as `runs show --json` and the API
// do: durations in milliseconds, no unset time.
func TestRunJSONRecordView(t *testing.T) {
	srv := newRecorder(t, http.StatusOK, `{"id": "ord_42"}`)
	recipe := writeFile(t, t.TempDir(), "order-sync.yaml", orderRecipe(srv.URL))
	t.Setenv("SOUS_SECRET_ORDERS_API_TOKEN", "tok-very-secret-123")
	r := sous(t, "body: {id: 7, total: 100}\n", "run", recipe, "--event", "-", "--json")
	require.Equal(t, 0, r.code, "%s", r)
	require.NotContains(t, r.stdout, "0001-01-01", "no unset time")
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rec), "%s", r)
	require.Contains(t, rec, "duration_ms")
	require.NotContains(t, rec, "duration")
	attempt := rec["steps"].([]any)[0].(map[string]any)["attempts"].([]any)[0].(map[string]any)
	require.Contains(t, attempt, "duration_ms")
	require.NotContains(t, attempt, "duration")
}

// A remote's answer quoted in an error may hold terminal control
// sequences: runs show and runs list print them escaped, so that they
// cannot recolour, retitle or erase the operator's screen.
func TestRunsShowControlCharacters(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	evil := "503: \x1b]0;pwned\x07\x1b[2J\u009b31mgone"
	quoted, err := json.Marshal(evil)
	require.NoError(t, err)
	record := fmt.Sprintf(`{"run_id":"run_e","recipe":"orders","status":"failed",
		"steps":[{"id":"call","action":"http.request","status":"failed","reason":"server_error","error":%s,
		 "output":{"body":"\u009b1m"},
		 "attempts":[{"number":1,"started":%q,"duration":1500000,"error":%s,"reason":"server_error"}]}],
		"started":%q,"duration":1500000}`, quoted, at.Format(time.RFC3339Nano), quoted, at.Format(time.RFC3339Nano))
	data := seedRuns(t, &store.Run{ID: "run_e", Recipe: "orders", EventID: "ev_e", Status: "failed", StartedAt: at,
		Duration: 1500 * time.Microsecond, ErrorStep: "call", Reason: "server_error", Error: evil, Attempt: 1, Record: json.RawMessage(record)})
	for _, args := range [][]string{{"runs", "show", "--data", data, "run_e"}, {"runs", "list", "--data", data}} {
		r := sous(t, "", args...)
		require.Equal(t, 0, r.code, "%s", r)
		require.NotContains(t, r.stdout, "\x1b", "%s", r)
		require.NotContains(t, r.stdout, "\x07", "%s", r)
		require.NotContains(t, r.stdout, "\u009b", "%s", r)
		require.Contains(t, r.stdout, `503: \x1b]0;pwned\x07\x1b[2J\x9b31mgone`, "%s", r)
		if args[1] == "show" {
			require.Contains(t, r.stdout, "    error   503: \\x1b]0;", "%s", r)
			require.Contains(t, r.stdout, "    attempt 1  ", "%s", r)
			require.Contains(t, r.stdout, `    output  {"body":"\x9b1m"}`, "%s", r)
		}
	}
}

// stats prints its percentiles as runs list and runs show print a
// duration: a run of 400µs is not "0s".
func TestStatsShortDurations(t *testing.T) {
	at := time.Now().Add(-time.Hour).UTC()
	data := seedRuns(t, &store.Run{ID: "run_q", Recipe: "orders", EventID: "ev_q", Status: "succeeded", StartedAt: at,
		Duration: 400 * time.Microsecond, Attempt: 1})
	r := sous(t, "", "stats", "--data", data)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "duration p50 400µs, p95 400µs, p99 400µs;", "%s", r)
}

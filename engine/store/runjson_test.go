package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestRunJSON checks that a run and its steps give their durations in
// milliseconds, never Go's nanoseconds, and read back the same.
func TestRunJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	run := store.Run{ID: "run_1", Recipe: "r", EventID: "ev_1", Status: "succeeded", StartedAt: at, FinishedAt: at.Add(1500 * time.Microsecond),
		Duration: 1500 * time.Microsecond, Attempt: 1,
		Steps: []store.RunStep{{Step: "s", Action: "http.request", Status: "succeeded", Attempts: 1, Duration: 2 * time.Second}}}
	raw, err := json.Marshal(run)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, 1.5, m["duration_ms"])
	require.NotContains(t, m, "duration")
	step := m["steps"].([]any)[0].(map[string]any)
	require.Equal(t, 2000.0, step["duration_ms"])
	require.NotContains(t, step, "duration")

	var back store.Run
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, run, back)
}

// TestRunJSONRecord: the run's record, as the API and the CLI show it,
// gives its durations in milliseconds with the unit in the key and leaves
// out times that are not set; the steps' inputs and outputs are left as
// they are, whatever their keys. It reads back as stored.
func TestRunJSONRecord(t *testing.T) {
	stored := `{"run_id":"run_1","recipe":"r","status":"failed","steps":[{"id":"call","action":"http.request","status":"failed",` +
		`"input":{"duration":5,"started":"0001-01-01T00:00:00Z"},"output":{"n":12345678901234567890},` +
		`"attempts":[{"number":1,"started":"2026-11-22T08:00:00Z","duration":1500000,"error":"503","retryable":true,"delay":2000000000},` +
		`{"number":2,"started":"2026-11-22T08:00:02Z","duration":250000000}]}],` +
		`"started":"2026-11-22T08:00:00Z","duration":2250000000,"retry_at":"0001-01-01T00:00:00Z"}`
	tests := []struct {
		name string
		run  store.Run
		want map[string]any // keys of the run's JSON: present (non-nil) or absent (nil)
	}{
		{name: "finished", run: store.Run{ID: "run_1", Status: "failed", StartedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC),
			FinishedAt: time.Date(2026, 11, 22, 8, 0, 2, 0, time.UTC), Duration: 2250 * time.Millisecond, Record: json.RawMessage(stored)},
			want: map[string]any{"started_at": "2026-11-22T08:00:00Z", "finished_at": "2026-11-22T08:00:02Z", "duration_ms": 2250.0}},
		{name: "running: no finished_at", run: store.Run{ID: "run_2", Status: "running", StartedAt: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)},
			want: map[string]any{"started_at": "2026-11-22T08:00:00Z", "finished_at": nil, "record": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.run)
			require.NoError(t, err)
			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			for k, v := range tc.want {
				if v == nil {
					require.NotContains(t, m, k)
					continue
				}
				require.Equal(t, v, m[k], k)
			}
			if tc.run.Record != nil {
				var rec struct{ Record json.RawMessage }
				require.NoError(t, json.Unmarshal(raw, &rec))
				require.JSONEq(t, `{"run_id":"run_1","recipe":"r","status":"failed","steps":[{"id":"call","action":"http.request","status":"failed",`+
					`"input":{"duration":5,"started":"0001-01-01T00:00:00Z"},"output":{"n":12345678901234567890},`+
					`"attempts":[{"number":1,"started":"2026-11-22T08:00:00Z","duration_ms":1.5,"error":"503","retryable":true,"delay_ms":2000},`+
					`{"number":2,"started":"2026-11-22T08:00:02Z","duration_ms":250}]}],`+
					`"started":"2026-11-22T08:00:00Z","duration_ms":2250}`, string(rec.Record))
				require.Contains(t, string(rec.Record), "12345678901234567890", "numbers in outputs are kept as written")
			}
			var back store.Run
			require.NoError(t, json.Unmarshal(raw, &back))
			if tc.run.Record != nil {
				var wantRec, gotRec map[string]any
				require.NoError(t, json.Unmarshal(tc.run.Record, &wantRec))
				require.NoError(t, json.Unmarshal(back.Record, &gotRec))
				delete(wantRec, "retry_at") // a zero time, left out
				require.Equal(t, wantRec, gotRec)
				back.Record, tc.run.Record = nil, nil
			}
			require.Equal(t, tc.run, back)
		})
	}
}

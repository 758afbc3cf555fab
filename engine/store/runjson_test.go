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

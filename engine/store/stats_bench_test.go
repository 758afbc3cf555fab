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

// BenchmarkStats measures `sous stats` (and GET /api/v1/stats) over a
// window of 10,000 runs of two steps each on the embedded store: the
// calls per action and connection are read from every run's record.
func BenchmarkStats(b *testing.B) {
	st := openSQLite(b)
	ctx := context.Background()
	now := time.Now().UTC()
	const runs = 10_000
	for i := range runs {
		steps := []*runner.StepResult{
			{ID: "notify", Action: "slack.post_message", Connection: "slack", Status: runner.StatusSucceeded,
				Input: map[string]any{"channel": "#ops", "text": "order shipped"}, Output: map[string]any{"ts": "1700000000.000100"},
				Attempts: []runner.Attempt{{Number: 1, Duration: time.Millisecond}}},
			{ID: "sync", Action: "http.request", Connection: "crm", Status: runner.StatusSucceeded,
				Attempts: []runner.Attempt{{Number: 1, Error: "503", Reason: "server_error", Retryable: true, Delay: time.Second}, {Number: 2}}},
		}
		id := fmt.Sprintf("run_%05d", i)
		rec, err := json.Marshal(&runner.Result{RunID: id, Recipe: "orders", Status: runner.StatusSucceeded, Steps: steps})
		require.NoError(b, err)
		require.NoError(b, st.SaveRun(ctx, &store.Run{ID: id, Recipe: "orders", EventID: "ev_" + id, Status: "succeeded",
			StartedAt: now.Add(-time.Duration(i) * time.Second), FinishedAt: now, Attempt: 1, Record: rec}))
	}
	b.ResetTimer()
	for range b.N {
		s, err := st.Stats(ctx, "", now.Add(-24*time.Hour))
		if err != nil || len(s.Actions) != 2 || s.Actions[0].Calls+s.Actions[1].Calls != 3*runs {
			b.Fatalf("stats: %v %+v", err, s)
		}
	}
	b.ReportMetric(float64(runs)*float64(b.N)/b.Elapsed().Seconds(), "runs/s")
}

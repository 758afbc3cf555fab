package service

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeMaxRetryAfter: the service's runners take
// pipeline.max_retry_after from the settings. A service answering 429 with
// a Retry-After beyond it fails the run at once, reason rate_limited, with
// an error naming the limit; within it, the run waits (a durable retry,
// pending) and nothing fails.
func TestServeMaxRetryAfter(t *testing.T) {
	tests := []struct {
		name          string
		maxRetryAfter time.Duration
		retryAfter    string // the header, in seconds
		failed        bool
	}{
		{name: "beyond the limit fails the run", maxRetryAfter: 30 * time.Second, retryAfter: "60", failed: true},
		{name: "within the limit waits", maxRetryAfter: 2 * time.Minute, retryAfter: "60"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.Header().Set("Retry-After", tc.retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
			}))
			t.Cleanup(limited.Close)
			recipesDir, dataDir := t.TempDir(), t.TempDir()
			writeRecipe(t, recipesDir, "limited.yaml", hookRecipe("limited", "/limited", limited.URL, "/x"))
			settings := testSettings()
			settings.Pipeline.MaxRetryAfter = tc.maxRetryAfter
			r := startWith(t, dataDir, recipesDir, settings)

			require.Equal(t, http.StatusAccepted, r.post(t, "/limited", map[string]any{"id": "l-1"}))
			if tc.failed {
				require.Eventually(t, func() bool {
					runs := runsOf(t, r.svc.Store, "limited")
					return len(runs) == 1 && runs[0].Status == "failed"
				}, 10*time.Second, 10*time.Millisecond, "the run did not fail at once")
				run := runsOf(t, r.svc.Store, "limited")[0]
				require.Equal(t, "rate_limited", run.Reason)
				require.Contains(t, run.Error, "the service asked to retry after 1m0s, beyond pipeline.max_retry_after (30s)")
				require.Equal(t, int32(1), calls.Load(), "no retry was made")
			} else {
				require.Eventually(t, func() bool { return calls.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
				// the run is paused until its retry: give a wrongly bounded
				// runner time to fail it
				time.Sleep(500 * time.Millisecond)
				for _, run := range runsOf(t, r.svc.Store, "limited") {
					require.NotEqual(t, "failed", run.Status, "%s: %s", run.Reason, run.Error)
				}
				require.Equal(t, int32(1), calls.Load(), "the retry waits for Retry-After")
			}
			require.NoError(t, r.stop(t))
		})
	}
}

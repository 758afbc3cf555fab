package pipeline_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
)

// TestRunID: a run id is stable (stored runs are found by it after a
// restart), starts with its event's id and tells recipes apart.
func TestRunID(t *testing.T) {
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:5]) }
	tests := []struct {
		event, recipe, want string
	}{
		{"ev_0192f1a2-7c3e-7000-8000-000000000001", "orders", "run_0192f1a2-7c3e-7000-8000-000000000001_" + hash("orders")},
		{"ev_0192f1a2-7c3e-7000-8000-000000000001", "orders-2", "run_0192f1a2-7c3e-7000-8000-000000000001_" + hash("orders-2")},
		{"tick-1", "nightly", "run_tick-1_" + hash("nightly")},
	}
	for _, tc := range tests {
		t.Run(tc.recipe, func(t *testing.T) {
			require.Equal(t, tc.want, pipeline.RunID(tc.event, tc.recipe))
			require.Equal(t, tc.want, pipeline.RunID(tc.event, tc.recipe), "the same the second time")
		})
	}
	require.NotEqual(t, pipeline.RunID("ev_1", "a"), pipeline.RunID("ev_1", "b"))
}

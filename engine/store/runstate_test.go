package store_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestRunState: the one read the runner makes before a run says whether
// the run is done and hands over its checkpoint.
func TestRunState(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		done, cp, err := st.RunState(ctx, "run_x")
		require.NoError(t, err)
		require.False(t, done, "an unknown run is not done")
		require.Nil(t, cp)

		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.SaveCheckpoint(ctx, tx, "run_x", []byte(`{"next":1}`), now) }))
		done, cp, err = st.RunState(ctx, "run_x")
		require.NoError(t, err)
		require.False(t, done)
		require.JSONEq(t, `{"next":1}`, string(cp), "a paused run hands over its checkpoint")

		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			return st.SaveRunTx(ctx, tx, &store.Run{ID: "run_x", Recipe: "r", EventID: "ev", Status: "failed",
				StartedAt: now, FinishedAt: now, Attempt: 1, Replace: true})
		}))
		for i := 0; i < 2; i++ { // the second call reuses the prepared statement
			done, cp, err = st.RunState(ctx, "run_x")
			require.NoError(t, err)
			require.True(t, done, "a recorded run is done")
			require.Nil(t, cp, "and its checkpoint is gone")
		}
	})
}

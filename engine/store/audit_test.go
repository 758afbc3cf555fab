package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

func TestAudit(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		for i, a := range []string{"connection.connected", "recipe.run", "connection.revoked"} {
			require.NoError(t, st.AddAudit(ctx, store.AuditEntry{At: base.Add(time.Duration(i) * time.Minute), Actor: "cli:ops", Action: a, Target: "slack", Detail: "d"}))
		}
		got, err := st.ListAudit(ctx, time.Time{}, 0)
		require.NoError(t, err)
		require.Len(t, got, 3)
		require.Equal(t, "connection.revoked", got[0].Action, "newest first")
		require.Equal(t, base.Add(2*time.Minute), got[0].At)
		require.Equal(t, "cli:ops", got[0].Actor)
		got, err = st.ListAudit(ctx, base.Add(time.Minute), 0)
		require.NoError(t, err)
		require.Len(t, got, 2, "since")
		got, err = st.ListAudit(ctx, time.Time{}, 1)
		require.NoError(t, err)
		require.Len(t, got, 1, "limit")
		require.NoError(t, st.AddAudit(ctx, store.AuditEntry{Actor: "serve", Action: "connection.refreshed", Target: "slack"}))
		got, err = st.ListAudit(ctx, time.Now().Add(-time.Minute), 0)
		require.NoError(t, err)
		require.Len(t, got, 1, "a zero time is now")
	})
}

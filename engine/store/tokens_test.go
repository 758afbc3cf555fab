package store_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestTokenRows: the token rows round-trip (zero times and empty lists
// included), the list leaves the sealed tokens out, and a state or a
// delete on a connection with no row reports it.
func TestTokenRows(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		_, err := st.GetToken(ctx, nil, "slack")
		require.ErrorIs(t, err, store.ErrNotFound)

		full := &store.TokenRow{Connection: "slack", Type: "slack", Account: "Acme", Scopes: []string{"chat:write"},
			Extra: map[string]string{"team_id": "T1"}, Expiry: now.Add(time.Hour), RefreshedAt: now, State: "ok",
			UpdatedAt: now, KeyID: "0123456789abcdef", Sealed: []byte{1, 2, 3, 0, 255}}
		bare := &store.TokenRow{Connection: "google", Type: "google", State: "ok", KeyID: "0123456789abcdef", Sealed: []byte{9}}
		require.NoError(t, st.PutToken(ctx, nil, full))
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error { return st.PutToken(ctx, tx, bare) }))

		got, err := st.GetToken(ctx, nil, "slack")
		require.NoError(t, err)
		require.Equal(t, full, got)
		got, err = st.GetToken(ctx, nil, "google")
		require.NoError(t, err)
		require.Equal(t, &store.TokenRow{Connection: "google", Type: "google", Scopes: []string{}, Extra: map[string]string{},
			State: "ok", KeyID: "0123456789abcdef", Sealed: []byte{9}}, got)

		list, err := st.ListTokens(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "google", list[0].Connection)
		for _, r := range list {
			require.Nil(t, r.Sealed, "the list holds no sealed token")
		}

		ok, err := st.SetTokenState(ctx, "slack", "needs_reauth", "invalid_grant", now.Add(time.Minute))
		require.NoError(t, err)
		require.True(t, ok)
		got, err = st.GetToken(ctx, nil, "slack")
		require.NoError(t, err)
		require.Equal(t, "needs_reauth", got.State)
		require.Equal(t, "invalid_grant", got.LastError)
		require.Equal(t, now.Add(time.Minute), got.UpdatedAt)
		ok, err = st.SetTokenState(ctx, "nope", "ok", "", now)
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			require.NoError(t, st.LockTokens(ctx, tx))
			return st.ResealToken(ctx, tx, "google", "fedcba9876543210", []byte{7, 7})
		}))
		ids, err := st.TokenKeyIDs(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int{"0123456789abcdef": 1, "fedcba9876543210": 1}, ids)

		ok, err = st.DeleteToken(ctx, "google")
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = st.DeleteToken(ctx, "google")
		require.NoError(t, err)
		require.False(t, ok)
	})
}

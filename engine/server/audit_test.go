package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/store"
)

// TestAPIAudit: a change made through the API is in the audit log with the
// key's name, never the key; GET /api/v1/audit lists it.
func TestAPIAudit(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer key-two"}
	rec := e.do(t, req{target: "/api/v1/recipes/orders/run", body: `{"body": {"order": {"id": "A-1", "total": 250}}}`, headers: h})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var run struct {
		RunID string `json:"run_id"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &run))

	rec = e.do(t, req{method: http.MethodGet, target: "/api/v1/audit?since=1h", headers: h})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.NotContains(t, rec.Body.String(), "key-two", "the key itself never")
	var got struct{ Entries []store.AuditEntry }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Entries, 1)
	require.Equal(t, "api:"+server.KeyName("key-two"), got.Entries[0].Actor)
	require.Equal(t, "recipe.run", got.Entries[0].Action)
	require.Equal(t, "orders", got.Entries[0].Target)
	require.Equal(t, "run "+run.RunID, got.Entries[0].Detail)
	require.Regexp(t, `^key-[0-9a-f]{8}$`, server.KeyName("key-two"))
	require.NotEqual(t, server.KeyName("key-one"), server.KeyName("key-two"))

	// older entries are left out, and the filters are checked
	require.NoError(t, e.st.AddAudit(context.Background(), store.AuditEntry{At: time.Now().Add(-48 * time.Hour), Actor: "cli", Action: "old", Target: "x"}))
	rec = e.do(t, req{method: http.MethodGet, target: "/api/v1/audit?since=24h&limit=10", headers: h})
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Entries, 1)
	for _, q := range []string{"since=-1h", "since=soon", "limit=0", "limit=1001", "limit=x"} {
		require.Equal(t, "bad_filter", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/api/v1/audit?" + q, headers: h}), http.StatusBadRequest), q)
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/server"
)

func TestAPIConnections(t *testing.T) {
	auth := map[string]string{"Authorization": "Bearer key-one"}
	t.Run("the service's list", func(t *testing.T) {
		e := newEnv(t, nil, nil, func(c *server.Config) {
			c.Connections = func(context.Context) ([]oauth.Status, error) {
				return []oauth.Status{{Name: "slack", Type: "slack", State: "needs_reauth", Credentials: "oauth", LastError: "invalid_grant"}}, nil
			}
		})
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/connections", headers: auth})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got struct{ Connections []oauth.Status }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.Equal(t, "needs_reauth", got.Connections[0].State)
		require.Equal(t, "unauthorized", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/api/v1/connections"}), http.StatusUnauthorized))
	})
	t.Run("none", func(t *testing.T) {
		e := newEnv(t, nil, nil, nil)
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/connections", headers: auth})
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `{"connections":[]}`, rec.Body.String())
	})
	t.Run("a store that fails", func(t *testing.T) {
		e := newEnv(t, nil, nil, func(c *server.Config) {
			c.Connections = func(context.Context) ([]oauth.Status, error) { return nil, errors.New("database is locked") }
		})
		require.Equal(t, "store_error", apiErr(t, e.do(t, req{method: http.MethodGet, target: "/api/v1/connections", headers: auth}), http.StatusInternalServerError))
	})
}

package http_test

import (
	"encoding/json"
	"net/http"
	"testing"

	httpaction "github.com/sous-run/sous/actions/http"
	"github.com/sous-run/sous/engine/connector/connectortest"
)

// TestKit runs the shared action checks on http.request: a POST through a
// connection whose bearer token and headers are the kit's canary.
func TestKit(t *testing.T) {
	fake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/orders" || r.Header.Get("Authorization") == "" {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "o-1"})
	})
	connectortest.Run(t, connectortest.Kit{
		Spec:       httpaction.Request,
		Connection: map[string]any{"bearer_token": "set-by-the-kit"},
		With:       map[string]any{"url": "orders", "json": map[string]any{"n": 1}},
		Fake:       fake,
	})
}

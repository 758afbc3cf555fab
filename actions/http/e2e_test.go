package http_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

const e2eRecipe = `
version: 1
name: sync-orders
trigger:
  type: webhook.received
  with: {path: /orders}
filter: event.body.order.total > 0
vars:
  label: "order {{ event.body.order.id }}"
steps:
  - id: create
    action: http.request
    connection: api
    with:
      url: "orders/{{ event.body.order.id }}"
      method: PUT
      headers: {X-Trace: "{{ trigger.id }}"}
      query: {source: "{{ event.method }}"}
      json:
        label: "{{ vars.label }}"
        total: "{{ event.body.order.total }}"
        token: "{{ secrets.SHOP }}"
    retry: {max_attempts: 4, backoff: constant, initial_interval: 10ms, max_interval: 10ms}
    timeout: 5s
  - id: confirm
    action: http.request
    connection: api
    if: steps.create.output.status == 200
    with:
      url: "confirm/{{ steps.create.output.json.ref }}"
      body: "created {{ steps.create.output.json.ref }}"
`

// One recipe, loaded by the real loader and run by the real runner, calls a
// server that fails twice with 503 and then succeeds.
func TestEndToEndRetriesThenSucceeds(t *testing.T) {
	const shopSecret = "shop_secret_T7x9Qe"
	var creates atomic.Int32
	var mu sync.Mutex // guards waits
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/orders/o-17":
			if creates.Add(1) <= 2 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "try later", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ref":"R-9"}`)
		case r.URL.Path == "/api/confirm/R-9":
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	})
	rec, diags := (&recipes.Loader{}).Parse("sync-orders.yaml", []byte(e2eRecipe))
	require.Falsef(t, diags.HasErrors(), "%s", diags.Error())

	var waits []time.Duration
	r := &runner.Runner{
		Secrets: map[string]string{"SHOP": shopSecret},
		Connection: func(name string) (*connector.Connection, error) {
			require.Equal(t, "api", name)
			return connection(t, map[string]any{"base_url": srv.URL + "/api/", "bearer_token": "conn_tok_55"}), nil
		},
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			return nil
		},
	}
	ev := runner.Event{ID: "delivery-1", Type: "webhook.received", ReceivedAt: time.Now(), Payload: map[string]any{
		"method": "POST",
		"body":   map[string]any{"order": map[string]any{"id": "o-17", "total": 42.5}},
	}}
	res := r.Run(t.Context(), rec, ev, "run-7")
	require.Equalf(t, runner.StatusSucceeded, res.Status, "run error: %+v", res.Error)

	reqs := srv.requests()
	require.Len(t, reqs, 4, "three creates and one confirm")
	var keys []string
	var bodies []map[string]any
	for _, q := range reqs[:3] {
		require.Equal(t, http.MethodPut, q.Method)
		require.Equal(t, "/api/orders/o-17", q.Path)
		require.Equal(t, "POST", q.Query.Get("source"))
		require.Equal(t, "delivery-1", q.Header.Get("X-Trace"))
		require.Equal(t, "Bearer conn_tok_55", q.Header.Get("Authorization"))
		require.Equal(t, "application/json", q.Header.Get("Content-Type"))
		var body map[string]any
		require.NoError(t, json.Unmarshal(q.Body, &body))
		bodies = append(bodies, body)
		keys = append(keys, q.Header.Get("Idempotency-Key"))
	}
	require.Equal(t, map[string]any{"label": "order o-17", "total": 42.5, "token": shopSecret}, bodies[0],
		"the server gets the rendered body, the real secret included")
	require.NotEmpty(t, keys[0])
	require.Equal(t, []string{keys[0], keys[0], keys[0]}, keys, "one idempotency key for every attempt")

	confirm := reqs[3]
	require.Equal(t, http.MethodPost, confirm.Method)
	require.Equal(t, "/api/confirm/R-9", confirm.Path)
	require.Equal(t, "created R-9", string(confirm.Body))
	require.NotEqual(t, keys[0], confirm.Header.Get("Idempotency-Key"))

	create := res.Step("create")
	require.Len(t, create.Attempts, 3)
	require.Equal(t, "server_error", create.Attempts[0].Reason)
	require.True(t, create.Attempts[0].Retryable)
	require.Equal(t, int64(200), create.Output["status"])
	require.Equal(t, runner.Redacted, create.Input["json"].(map[string]any)["token"])
	mu.Lock()
	require.Equal(t, []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, waits)
	mu.Unlock()
	require.Equal(t, runner.StatusSucceeded, res.Step("confirm").Status)
	require.Equal(t, int64(http.StatusAccepted), res.Step("confirm").Output["status"])

	out, err := json.Marshal(res)
	require.NoError(t, err)
	require.NotContains(t, string(out), shopSecret)
}

// A client error is not retried, and the run stops at that step.
func TestEndToEndClientErrorStops(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unknown order"}`, http.StatusUnprocessableEntity)
	})
	rec, diags := (&recipes.Loader{}).Parse("sync-orders.yaml", []byte(e2eRecipe))
	require.Falsef(t, diags.HasErrors(), "%s", diags.Error())
	r := &runner.Runner{
		Secrets: map[string]string{"SHOP": "shop_secret_T7x9Qe"},
		Connection: func(string) (*connector.Connection, error) {
			return connection(t, map[string]any{"base_url": srv.URL + "/api/"}), nil
		},
		Sleep: func(context.Context, time.Duration) error { t.Error("a client error must not be retried"); return nil },
	}
	res := r.Run(t.Context(), rec, runner.Event{ID: "d2", Payload: map[string]any{
		"body": map[string]any{"order": map[string]any{"id": "o-1", "total": 1}},
	}}, "run-8")
	require.Equal(t, runner.StatusFailed, res.Status)
	require.Equal(t, "create", res.Error.Step)
	require.Equal(t, "client_error", res.Error.Reason)
	require.Len(t, srv.requests(), 1)
	require.Nil(t, res.Step("confirm"))
}

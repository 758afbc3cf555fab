package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/zapier"
)

var zapierRecipes = []string{`version: 1
name: new-order
trigger:
  type: zapier.action
  with:
    name: create-order
    inputs:
      - {key: email, type: string, required: true, label: Email}
      - {key: quantity, type: integer, help: How many}
steps:
  - id: notify
    action: zapier.notify
    with: {event: order_created, data: {email: "{{ event.input.email }}"}}
`}

// zapierEnv is an env whose server serves /api/v1/zapier.
func zapierEnv(t *testing.T) (*env, *zapier.Hub) {
	var hub *zapier.Hub
	e := newEnv(t, zapierRecipes, nil, func(c *server.Config) {
		var err error
		hub, err = zapier.New(context.Background(), zapier.Config{Store: c.Store, Engine: c.Engine})
		require.NoError(t, err)
		c.Zapier = hub
	})
	return e, hub
}

func (e *env) api(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, req{method: method, target: target, body: body,
		headers: map[string]string{"X-API-Key": "key-one", "Content-Type": "application/json"}})
}

func TestZapierHooksAPI(t *testing.T) {
	e, hub := zapierEnv(t)
	t.Run("the key is required", func(t *testing.T) {
		for _, r := range []req{{method: http.MethodGet, target: "/api/v1/zapier/me"},
			{method: http.MethodGet, target: "/api/v1/zapier/me", headers: map[string]string{"X-API-Key": "wrong"}},
			{method: http.MethodPost, target: "/api/v1/zapier/hooks", body: `{}`},
			{method: http.MethodDelete, target: "/api/v1/zapier/hooks/x"}} {
			require.Equal(t, "unauthorized", apiErr(t, e.do(t, r), http.StatusUnauthorized))
		}
	})
	t.Run("me", func(t *testing.T) {
		rec := e.api(t, http.MethodGet, "/api/v1/zapier/me", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, true, decode(t, rec)["ok"])
	})
	var id string
	t.Run("subscribe, with each name of the target", func(t *testing.T) {
		rec := e.api(t, http.MethodPost, "/api/v1/zapier/hooks", `{"target_url":"https://hooks.zapier.test/1/abc","event":"order_created"}`)
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		id = decode(t, rec)["id"].(string)
		require.NotContains(t, rec.Body.String(), "/1/abc", "the target's path is the Zap's secret")
		for _, alias := range []string{"url", "hookUrl", "targetUrl"} {
			rec := e.api(t, http.MethodPost, "/api/v1/zapier/hooks", `{"`+alias+`":"https://hooks.zapier.test/1/abc","event":"order_created"}`)
			require.Equal(t, http.StatusCreated, rec.Code, "the same target again, answered as the first time: %s", alias)
			require.Equal(t, id, decode(t, rec)["id"])
		}
		rec = e.api(t, http.MethodPost, "/api/v1/zapier/hooks", `{"hookUrl":"https://hooks.zapier.test/2","event":"order_created","filter":{"email":"a@b.test"}}`)
		require.Equal(t, http.StatusCreated, rec.Code)
		hooks, err := hub.Store().ListZapierHooks(context.Background(), "order_created")
		require.NoError(t, err)
		require.Len(t, hooks, 2)
		require.Equal(t, map[string]string{"email": "a@b.test"}, hooks[1].Filter)
	})
	t.Run("filter fields at the top level, as Zapier's CLI sends them", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			want       map[string]string
		}{
			{"strings, numbers and booleans as text",
				`{"url":"https://hooks.zapier.test/f1","event":"order_paid","email":"a@b.test","quantity":2,"big":9007199254740993,"total":7.50,"vip":true}`,
				map[string]string{"email": "a@b.test", "quantity": "2", "big": "9007199254740993", "total": "7.5", "vip": "true"}},
			{"blank and null fields filter nothing",
				`{"url":"https://hooks.zapier.test/f2","event":"order_paid","email":"","note":null}`, nil},
			{"the filter object wins over the same field at the top level",
				`{"url":"https://hooks.zapier.test/f3","event":"order_paid","email":"top@b.test","filter":{"email":"nested@b.test","count":3,"ok":false}}`,
				map[string]string{"email": "nested@b.test", "count": "3", "ok": "false"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rec := e.api(t, http.MethodPost, "/api/v1/zapier/hooks", tc.body)
				require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
				h, err := hub.Store().GetZapierHook(context.Background(), decode(t, rec)["id"].(string))
				require.NoError(t, err)
				require.Equal(t, tc.want, h.Filter)
			})
		}
	})
	t.Run("bad subscriptions", func(t *testing.T) {
		for body, code := range map[string]string{
			`{"url":"https://hooks.zapier.test/1","event":"x","tags":["a"]}`:  "bad_body",
			`{"url":"https://hooks.zapier.test/1","event":"x","who":{"a":1}}`: "bad_body",
			`{"url":"https://hooks.zapier.test/1","event":1}`:                 "bad_body",
			`{"url":"https://hooks.zapier.test/1","event":"x","filter":"a"}`:  "bad_body",
			`{"event":"order_created"}`:                                       "bad_target",
			`{"url":"ftp://x/y","event":"order_created"}`:                     "bad_target",
			`{"url":"/relative","event":"order_created"}`:                     "bad_target",
			`{"url":"https://hooks.zapier.test/1"}`:                           "bad_event",
			`{"url":"https://hooks.zapier.test/1","event":" "}`:               "bad_event",
			`[1,2]`:                 "bad_body",
			`{"url":1,"event":"x"}`: "bad_body",
			`{"filter":{"a":[1]}}`:  "bad_body",
		} {
			require.Equal(t, code, apiErr(t, e.api(t, http.MethodPost, "/api/v1/zapier/hooks", body), http.StatusBadRequest), body)
		}
	})
	t.Run("events and samples", func(t *testing.T) {
		rec := e.api(t, http.MethodGet, "/api/v1/zapier/events", "")
		require.Equal(t, http.StatusOK, rec.Code)
		var evs struct{ Events []zapier.Event }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &evs))
		require.Len(t, evs.Events, 1)
		require.Equal(t, "order_created", evs.Events[0].Key, "from the recipe's zapier.notify step")
		require.Equal(t, []string{"new-order"}, evs.Events[0].Recipes)
		rec = e.api(t, http.MethodGet, "/api/v1/zapier/events/order_created/samples", "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `[]`, rec.Body.String())
		for _, run := range []string{"r1", "r2"} {
			_, err := hub.Publish(context.Background(), &connector.Request{RunID: run, Step: "notify"},
				&connector.OutboxMessage{Channel: zapier.Channel, Topic: "order_created", Body: map[string]any{"email": run}})
			require.NoError(t, err)
		}
		rec = e.api(t, http.MethodGet, "/api/v1/zapier/events/order_created/samples", "")
		var items []map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &items))
		require.Equal(t, []map[string]any{{"id": zapier.ItemID("r2", "notify"), "email": "r2"}, {"id": zapier.ItemID("r1", "notify"), "email": "r1"}}, items)
		rec = e.api(t, http.MethodGet, "/api/v1/zapier/events", "")
		require.Contains(t, rec.Body.String(), `"email"`, "sample fields")
		rec = e.api(t, http.MethodGet, "/api/v1/zapier/deliveries?run_id=r1", "")
		var ds struct{ Deliveries []map[string]any }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ds))
		require.Len(t, ds.Deliveries, 1, "one per subscriber whose filter it passes")
		require.Equal(t, "pending", ds.Deliveries[0]["status"])
		require.Equal(t, "bad_filter", apiErr(t, e.api(t, http.MethodGet, "/api/v1/zapier/events/order_created/samples?limit=0", ""), http.StatusBadRequest))
	})
	t.Run("unsubscribe", func(t *testing.T) {
		rec := e.api(t, http.MethodDelete, "/api/v1/zapier/hooks/"+id, "")
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "not_found", apiErr(t, e.api(t, http.MethodDelete, "/api/v1/zapier/hooks/"+id, ""), http.StatusNotFound))
		rec = e.api(t, http.MethodGet, "/api/v1/zapier/deliveries?hook_id="+id, "")
		require.Contains(t, rec.Body.String(), `"unsubscribed"`)
		require.Equal(t, "method_not_allowed", apiErr(t, e.api(t, http.MethodPut, "/api/v1/zapier/hooks/"+id, ""), http.StatusMethodNotAllowed))
	})
}

func TestZapierActionsAPI(t *testing.T) {
	e, _ := zapierEnv(t)
	rec := e.api(t, http.MethodGet, "/api/v1/zapier/actions", "")
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"actions":[{"name":"create-order","recipes":["new-order"],"inputs":[
		{"key":"email","label":"Email","type":"string","required":true},{"key":"quantity","type":"integer","help_text":"How many"}]}]}`, rec.Body.String())
	require.Equal(t, http.StatusOK, e.api(t, http.MethodGet, "/api/v1/zapier/actions/create-order", "").Code)
	require.Equal(t, "not_found", apiErr(t, e.api(t, http.MethodGet, "/api/v1/zapier/actions/nope", ""), http.StatusNotFound))
	for body, field := range map[string]string{`{"quantity":2}`: "email", `{"email":"a@b.test","quantity":"two"}`: "quantity",
		`{"input":{"email":"a@b.test","quantity":1.5}}`: "quantity"} {
		rec := e.api(t, http.MethodPost, "/api/v1/zapier/actions/create-order", body)
		require.Equal(t, http.StatusBadRequest, rec.Code, body)
		out := decode(t, rec)["error"].(map[string]any)
		require.Equal(t, "bad_input", out["code"])
		require.Equal(t, field, out["field"])
		require.Contains(t, out["message"], field)
	}
	require.Equal(t, 0, e.runsQueued(t), "nothing started on bad input")
	require.Equal(t, "bad_wait", apiErr(t, e.api(t, http.MethodPost, "/api/v1/zapier/actions/create-order?wait=soon", `{"email":"x"}`), http.StatusBadRequest))
	require.Equal(t, "not_found", apiErr(t, e.api(t, http.MethodPost, "/api/v1/zapier/actions/nope", `{}`), http.StatusNotFound))
	require.Equal(t, "bad_body", apiErr(t, e.api(t, http.MethodPost, "/api/v1/zapier/actions/create-order", `[]`), http.StatusBadRequest))
	t.Run("any content type whose body is a JSON object", func(t *testing.T) {
		for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", ""} {
			rec := e.do(t, req{method: http.MethodPost, target: "/api/v1/zapier/actions/create-order", body: `email=a@b.test`,
				headers: map[string]string{"X-API-Key": "key-one", "Content-Type": ct}})
			require.Equal(t, "bad_body", apiErr(t, rec, http.StatusBadRequest), "not a JSON object (%q)", ct)
			require.Contains(t, rec.Body.String(), "JSON object")
		}
		require.Equal(t, 0, e.runsQueued(t))
		rec := e.do(t, req{method: http.MethodPost, target: "/api/v1/zapier/actions/create-order", body: `{"email":"curl@b.test"}`,
			headers: map[string]string{"X-API-Key": "key-one", "Content-Type": "application/x-www-form-urlencoded"}})
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.Equal(t, 1, e.runsQueued(t))
		require.JSONEq(t, `{"action":"create-order","input":{"email":"curl@b.test"},"meta":{}}`, string(e.lastRunMsg(t).Event.Payload))
	})
	rec = e.api(t, http.MethodPost, "/api/v1/zapier/actions/create-order", `{"email":"a@b.test","quantity":"2"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	out := decode(t, rec)
	require.Equal(t, "queued", out["status"])
	require.Equal(t, 2, e.runsQueued(t))
	msg := e.lastRunMsg(t)
	require.Equal(t, out["id"], msg.RunID)
	require.JSONEq(t, `{"action":"create-order","input":{"email":"a@b.test","quantity":2},"meta":{}}`, string(msg.Event.Payload))
}

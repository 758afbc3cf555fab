package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/store"
)

// apiEndpoints are every endpoint of the REST API, with a request each.
var apiEndpoints = []struct{ method, path string }{
	{http.MethodGet, "/api/v1/recipes"},
	{http.MethodGet, "/api/v1/recipes/orders"},
	{http.MethodGet, "/api/v1/runs"},
	{http.MethodGet, "/api/v1/runs/run_1"},
	{http.MethodPost, "/api/v1/runs/run_1/replay"},
	{http.MethodPost, "/api/v1/recipes/orders/run"},
	{http.MethodGet, "/api/v1/connections"},
	{http.MethodGet, "/api/v1/audit"},
	{http.MethodGet, "/api/v1/stats"},
	{http.MethodGet, "/api/v1/nope"},
	// wrong methods: refused for the key before the method
	{http.MethodDelete, "/api/v1/runs"},
	{http.MethodPost, "/api/v1/recipes"},
	{http.MethodGet, "/api/v1/runs/run_1/replay"},
	{http.MethodPut, "/api/v1/stats"},
}

func TestAPIAuth(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	open := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.APIKeys = nil })
	blank := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.APIKeys = []string{""} })
	saveRun(t, e.st, &store.Run{ID: "run_1", Recipe: "orders", EventID: "ev_gone", Status: "failed", StartedAt: time.Now()})
	tests := []struct {
		name    string
		env     *env
		headers map[string]string
	}{
		{name: "no key", env: e},
		{name: "wrong bearer", env: e, headers: map[string]string{"Authorization": "Bearer key-three"}},
		{name: "wrong X-API-Key", env: e, headers: map[string]string{"X-API-Key": "key-three"}},
		{name: "key prefix", env: e, headers: map[string]string{"X-API-Key": "key-on"}},
		{name: "key with a suffix", env: e, headers: map[string]string{"X-API-Key": "key-one1"}},
		{name: "basic scheme", env: e, headers: map[string]string{"Authorization": "Basic a2V5LW9uZQ=="}},
		{name: "key without a scheme", env: e, headers: map[string]string{"Authorization": "key-one"}},
		{name: "empty bearer", env: e, headers: map[string]string{"Authorization": "Bearer "}},
		{name: "wrong X-API-Key beside a good bearer", env: e,
			headers: map[string]string{"X-API-Key": "nope", "Authorization": "Bearer key-one"}},
		{name: "no keys configured", env: open, headers: map[string]string{"Authorization": "Bearer key-one"}},
		{name: "no keys configured, empty key", env: open, headers: map[string]string{"Authorization": "Bearer "}},
		{name: "an empty configured key", env: blank, headers: map[string]string{"X-API-Key": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ep := range apiEndpoints {
				before := tc.env.count(t, "queue")
				rec := tc.env.do(t, req{method: ep.method, target: ep.path, headers: tc.headers})
				require.Equal(t, "unauthorized", apiErr(t, rec, http.StatusUnauthorized), "%s %s", ep.method, ep.path)
				require.Empty(t, rec.Header().Get("Allow"), "%s %s: nothing about the API without a key", ep.method, ep.path)
				require.NotContains(t, rec.Body.String(), "key-one")
				require.Equal(t, before, tc.env.count(t, "queue"), "nothing is replayed")
			}
		})
	}
	t.Run("missing key asks for a bearer", func(t *testing.T) {
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/recipes"})
		require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
	})
	t.Run("either header and either key works", func(t *testing.T) {
		for _, h := range []map[string]string{
			{"Authorization": "Bearer key-one"},
			{"Authorization": "Bearer key-two"},
			{"X-API-Key": "key-one"},
			{"X-API-Key": "key-two"},
			{"X-API-Key": "key-two", "Authorization": "Bearer wrong"},
		} {
			rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/recipes", headers: h})
			require.Equal(t, http.StatusOK, rec.Code, "%v: %s", h, rec.Body.String())
		}
	})
	t.Run("authorised unknown endpoint is a JSON 404", func(t *testing.T) {
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/nope", headers: apiKey})
		require.Equal(t, "not_found", apiErr(t, rec, http.StatusNotFound))
	})
}

// TestMethodNotAllowed: a wrong method on a known path is a JSON 405 with
// Allow (under /api/v1 once the key is checked); an unknown path stays a
// JSON 404 whatever the method, and a wrong method changes nothing.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	saveRun(t, e.st, &store.Run{ID: "run_1", Recipe: "orders", EventID: "ev_gone", Status: "failed", StartedAt: time.Now()})
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{method: http.MethodDelete, path: "/api/v1/runs", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPost, path: "/api/v1/runs", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPost, path: "/api/v1/recipes", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPut, path: "/api/v1/recipes/orders", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodDelete, path: "/api/v1/recipes/nope", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPatch, path: "/api/v1/runs/run_1", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodGet, path: "/api/v1/runs/run_1/replay", status: http.StatusMethodNotAllowed, allow: "POST"},
		{method: http.MethodDelete, path: "/api/v1/runs/run_1/replay", status: http.StatusMethodNotAllowed, allow: "POST"},
		{method: http.MethodPost, path: "/api/v1/stats", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodOptions, path: "/api/v1/stats", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPost, path: "/healthz", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPut, path: "/readyz", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodPost, path: "/metrics", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodDelete, path: "/metrics", status: http.StatusMethodNotAllowed, allow: "GET, HEAD"},
		{method: http.MethodGet, path: "/api/v1/nope", status: http.StatusNotFound},
		{method: http.MethodDelete, path: "/api/v1/nope", status: http.StatusNotFound},
		{method: http.MethodPost, path: "/api/v1/runs/run_1/replay/again", status: http.StatusNotFound},
		{method: http.MethodGet, path: "/api/v2/runs", status: http.StatusNotFound},
		{method: http.MethodGet, path: "/nope", status: http.StatusNotFound},
		{method: http.MethodPost, path: "/healthz/x", status: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := e.rows(t)
			rec := e.do(t, req{method: tc.method, target: tc.path, headers: apiKey})
			if tc.status == http.StatusNotFound {
				require.Equal(t, "not_found", apiErr(t, rec, http.StatusNotFound))
				require.Empty(t, rec.Header().Get("Allow"))
			} else {
				require.Equal(t, "method_not_allowed", apiErr(t, rec, tc.status))
				require.Equal(t, tc.allow, rec.Header().Get("Allow"))
			}
			require.Equal(t, before, e.rows(t), "nothing is stored or queued")
		})
	}
	t.Run("HEAD is served where GET is", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/api/v1/runs", "/api/v1/stats"} {
			rec := e.do(t, req{method: http.MethodHead, target: p, headers: apiKey})
			require.Equal(t, http.StatusOK, rec.Code, p)
		}
	})
}

var apiKey = map[string]string{"Authorization": "Bearer key-one"}

// get calls the API with a key and decodes the answer.
func (e *env) get(tb testing.TB, target string, status int, into any) {
	tb.Helper()
	rec := e.do(tb, req{method: http.MethodGet, target: target, headers: apiKey})
	require.Equal(tb, status, rec.Code, "%s: %s", target, rec.Body.String())
	require.Equal(tb, "application/json", rec.Header().Get("Content-Type"))
	require.NoError(tb, json.Unmarshal(rec.Body.Bytes(), into), rec.Body.String())
}

func saveRun(tb testing.TB, st *store.Store, r *store.Run) {
	tb.Helper()
	if r.FinishedAt.IsZero() {
		r.FinishedAt = r.StartedAt.Add(r.Duration)
	}
	require.NoError(tb, st.SaveRun(context.Background(), r))
}

func TestAPIRecipes(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	var list struct {
		Recipes []server.RecipeInfo `json:"recipes"`
	}
	e.get(t, "/api/v1/recipes", http.StatusOK, &list)
	var names []string
	for _, r := range list.Recipes {
		names = append(names, r.Name)
	}
	require.Equal(t, []string{"custom", "orders", "plain", "put", "signed"}, names)

	tests := []struct {
		name   string
		status int
		want   server.RecipeInfo
	}{
		{name: "orders", status: http.StatusOK, want: server.RecipeInfo{Name: "orders", Description: "orders from the shop", File: "recipe.yaml",
			Enabled: true, Trigger: "webhook.received", Steps: []string{"deliver (http.request)"}, Filter: "event.body.order.total >= 100"}},
		{name: "signed", status: http.StatusOK, want: server.RecipeInfo{Name: "signed", File: "recipe.yaml",
			Enabled: true, Trigger: "webhook.received", Steps: []string{"deliver (http.request)"}}},
		{name: "nope", status: http.StatusNotFound},
		{name: "ord", status: http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/recipes/" + tc.name, headers: apiKey})
			if tc.status != http.StatusOK {
				require.Equal(t, "not_found", apiErr(t, rec, tc.status))
				return
			}
			var got server.RecipeInfo
			e.get(t, "/api/v1/recipes/"+tc.name, http.StatusOK, &got)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("no secret in the listing", func(t *testing.T) {
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/recipes", headers: apiKey})
		require.NotContains(t, rec.Body.String(), hookSecret)
	})
	t.Run("an empty index lists an empty array", func(t *testing.T) {
		empty := newEnv(t, nil, nil, nil)
		rec := empty.do(t, req{method: http.MethodGet, target: "/api/v1/recipes", headers: apiKey})
		require.Equal(t, http.StatusOK, rec.Code)
		require.JSONEq(t, `{"recipes":[]}`, rec.Body.String())
	})
}

func TestAPIRuns(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	now := time.Now().UTC().Truncate(time.Millisecond)
	runs := []*store.Run{
		{ID: "r1", Recipe: "a", EventID: "e1", Status: "succeeded", StartedAt: now.Add(-time.Hour), Duration: time.Second, Attempt: 1},
		{ID: "r2", Recipe: "a", EventID: "e2", Status: "failed", StartedAt: now.Add(-2 * time.Hour), Duration: 2 * time.Second,
			ErrorStep: "call", Reason: "http_5xx", Error: "503 from sink", Attempt: 1, Retries: 3},
		{ID: "r3", Recipe: "b", EventID: "e3", Status: "succeeded", StartedAt: now.Add(-48 * time.Hour), Duration: time.Second},
		{ID: "r4", Recipe: "b", EventID: "e4", Status: "dead", StartedAt: now.Add(-10 * time.Minute)},
		{ID: "r5", Recipe: "c", EventID: "e5", Status: "filtered", StartedAt: now.Add(-5 * time.Minute)},
	}
	for _, r := range runs {
		saveRun(t, e.st, r)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{query: "", want: []string{"r5", "r4", "r1", "r2", "r3"}},
		{query: "recipe=a", want: []string{"r1", "r2"}},
		{query: "recipe=zzz", want: []string{}},
		{query: "status=succeeded", want: []string{"r1", "r3"}},
		{query: "status=dead", want: []string{"r4"}},
		{query: "status=filtered", want: []string{"r5"}},
		{query: "recipe=b&status=dead", want: []string{"r4"}},
		{query: "since=24h", want: []string{"r5", "r4", "r1", "r2"}},
		{query: "since=90m", want: []string{"r5", "r4", "r1"}},
		{query: "since=1d", want: []string{"r5", "r4", "r1", "r2"}},
		{query: "since=3d&until=1d", want: []string{"r3"}},
		{query: "since=" + url.QueryEscape(now.Add(-90*time.Minute).Format(time.RFC3339)), want: []string{"r5", "r4", "r1"}},
		{query: "until=24h", want: []string{"r3"}},
		{query: "since=3h&until=30m", want: []string{"r1", "r2"}},
		{query: "limit=2", want: []string{"r5", "r4"}},
		{query: "limit=1000", want: []string{"r5", "r4", "r1", "r2", "r3"}},
		{query: "recipe=a&limit=1", want: []string{"r1"}},
	}
	for _, tc := range tests {
		t.Run("filter "+tc.query, func(t *testing.T) {
			var got struct {
				Runs []store.Run `json:"runs"`
			}
			e.get(t, "/api/v1/runs?"+tc.query, http.StatusOK, &got)
			ids := []string{}
			for _, r := range got.Runs {
				ids = append(ids, r.ID)
				require.Empty(t, r.Record, "the list leaves records out")
			}
			require.Equal(t, tc.want, ids)
		})
	}
	t.Run("durations in milliseconds", func(t *testing.T) {
		var got struct {
			Runs []map[string]any `json:"runs"`
		}
		e.get(t, "/api/v1/runs?recipe=a", http.StatusOK, &got)
		require.Len(t, got.Runs, 2)
		for i, want := range []float64{1000, 2000} {
			require.Equal(t, want, got.Runs[i]["duration_ms"], "run %v", got.Runs[i]["id"])
			require.NotContains(t, got.Runs[i], "duration", "one duration field, in milliseconds")
		}
	})
	for _, q := range []string{"status=running", "status=ok", "since=yesterday", "since=2024-01-01", "until=x", "since=213504d", "since=1.5d", "since=-1d", "until=-1h",
		"limit=0", "limit=-1", "limit=1001", "limit=ten", "limit=1.5"} {
		t.Run("bad filter "+q, func(t *testing.T) {
			rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/runs?" + q, headers: apiKey})
			require.Equal(t, "bad_filter", apiErr(t, rec, http.StatusBadRequest))
		})
	}
	t.Run("a run with its record", func(t *testing.T) {
		record := `{"run_id":"r2","recipe":"a","status":"failed","steps":[{"id":"call","action":"http.request","status":"failed","error":"503"}]}`
		r := *runs[1]
		r.Record = json.RawMessage(record)
		saveRun(t, e.st, &r)
		var got map[string]any
		e.get(t, "/api/v1/runs/r2", http.StatusOK, &got)
		require.Equal(t, "r2", got["id"])
		require.Equal(t, "a", got["recipe"])
		require.Equal(t, "failed", got["status"])
		require.Equal(t, "call", got["error_step"])
		require.Equal(t, "http_5xx", got["reason"])
		require.Equal(t, 3.0, got["retries"])
		require.Equal(t, 2000.0, got["duration_ms"])
		require.NotContains(t, got, "duration")
		raw, err := json.Marshal(got["record"])
		require.NoError(t, err)
		require.JSONEq(t, record, string(raw))
	})
	t.Run("a run without a record", func(t *testing.T) {
		var got map[string]any
		e.get(t, "/api/v1/runs/r4", http.StatusOK, &got)
		require.Equal(t, "dead", got["status"])
		require.NotContains(t, got, "record")
	})
	for _, id := range []string{"nope", "r", "r1%27%20OR%201=1"} {
		t.Run("unknown run "+id, func(t *testing.T) {
			rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/runs/" + id, headers: apiKey})
			require.Equal(t, "not_found", apiErr(t, rec, http.StatusNotFound))
		})
	}
}

func TestAPIReplay(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	ev, _ := e.storedEvent(t, e.post(t, "/orders", `{"order":{"id":"A-9","total":300}}`, nil))
	now := time.Now().UTC()
	saveRun(t, e.st, &store.Run{ID: "done", Recipe: "orders", EventID: ev.ID, Status: "failed", StartedAt: now,
		ErrorStep: "deliver", Reason: "http_5xx",
		Record: json.RawMessage(`{"run_id":"done","recipe":"orders","status":"failed","steps":[{"id":"deliver","action":"http.request","status":"failed"}]}`)})
	saveRun(t, e.st, &store.Run{ID: "busy", Recipe: "orders", EventID: ev.ID, Status: "running", StartedAt: now})
	saveRun(t, e.st, &store.Run{ID: "pruned", Recipe: "orders", EventID: "ev_pruned", Status: "failed", StartedAt: now})
	saveRun(t, e.st, &store.Run{ID: "ok", Recipe: "orders", EventID: ev.ID, Status: "succeeded", StartedAt: now})
	tests := []struct {
		name   string
		target string
		status int
		code   string
		from   string
	}{
		{name: "failed run", target: "/api/v1/runs/done/replay", status: http.StatusAccepted},
		{name: "succeeded run", target: "/api/v1/runs/ok/replay", status: http.StatusAccepted},
		{name: "from the failed step", target: "/api/v1/runs/done/replay?from_failed_step=true", status: http.StatusAccepted, from: "deliver"},
		{name: "from the failed step of a run that did not fail at one", target: "/api/v1/runs/ok/replay?from_failed_step=true",
			status: http.StatusConflict, code: "cannot_replay"},
		{name: "still running", target: "/api/v1/runs/busy/replay", status: http.StatusConflict, code: "cannot_replay"},
		{name: "unknown run", target: "/api/v1/runs/nope/replay", status: http.StatusNotFound, code: "not_found"},
		{name: "event pruned", target: "/api/v1/runs/pruned/replay", status: http.StatusNotFound, code: "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.runsQueued(t)
			rec := e.do(t, req{method: http.MethodPost, target: tc.target, headers: apiKey})
			if tc.code != "" {
				require.Equal(t, tc.code, apiErr(t, rec, tc.status))
				require.Equal(t, before, e.runsQueued(t), "nothing is queued")
				return
			}
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			out := decode(t, rec)
			require.Equal(t, "queued", out["status"])
			runID, _ := out["run_id"].(string)
			require.True(t, strings.HasPrefix(runID, "run_"), runID)
			require.Equal(t, before+1, e.runsQueued(t))
			rm := e.lastRunMsg(t)
			require.Equal(t, runID, rm.RunID)
			require.Equal(t, "orders", rm.Recipe)
			require.True(t, rm.Replay)
			require.Equal(t, ev.ID, rm.Event.ID)
			require.JSONEq(t, string(ev.Payload), string(rm.Event.Payload))
			require.Equal(t, tc.from, rm.FromStep)
		})
	}
	t.Run("GET is not a replay", func(t *testing.T) {
		before := e.runsQueued(t)
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/runs/done/replay", headers: apiKey})
		require.Equal(t, "method_not_allowed", apiErr(t, rec, http.StatusMethodNotAllowed))
		require.Equal(t, "POST", rec.Header().Get("Allow"))
		require.Equal(t, before, e.runsQueued(t))
	})
}

// TestAPIRunRecipe: POST /api/v1/recipes/{name}/run queues a run of that
// recipe on the event in the body, or records it filtered; bad input is a
// JSON 4xx and stores nothing.
func TestAPIRunRecipe(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.MaxBody = 256 })
	withJSON := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer key-one"}
	tests := []struct {
		name    string
		target  string
		body    string
		headers map[string]string
		status  int
		want    string // the answer's status, or its error code
	}{
		{name: "queued", target: "/api/v1/recipes/orders/run", body: `{"body": {"order": {"id": "M-1", "total": 250}}}`,
			headers: withJSON, status: http.StatusAccepted, want: "queued"},
		{name: "filtered", target: "/api/v1/recipes/orders/run", body: `{"body": {"order": {"id": "M-2", "total": 5}}}`,
			headers: withJSON, status: http.StatusOK, want: "filtered"},
		{name: "no body is an empty event", target: "/api/v1/recipes/plain/run", headers: apiKey,
			status: http.StatusAccepted, want: "queued"},
		{name: "unknown recipe", target: "/api/v1/recipes/nope/run", body: `{}`, headers: withJSON,
			status: http.StatusNotFound, want: "not_found"},
		{name: "not an object", target: "/api/v1/recipes/orders/run", body: `[1, 2]`, headers: withJSON,
			status: http.StatusBadRequest, want: "bad_body"},
		{name: "malformed JSON", target: "/api/v1/recipes/orders/run", body: `{"body": `, headers: withJSON,
			status: http.StatusBadRequest, want: "bad_body"},
		{name: "null", target: "/api/v1/recipes/orders/run", body: `null`, headers: withJSON,
			status: http.StatusBadRequest, want: "bad_body"},
		{name: "not JSON", target: "/api/v1/recipes/orders/run", body: `a=1`,
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Bearer key-one"},
			status:  http.StatusUnsupportedMediaType, want: "unsupported_media_type"},
		{name: "too large", target: "/api/v1/recipes/orders/run", body: `{"pad": "` + strings.Repeat("x", 300) + `"}`, headers: withJSON,
			status: http.StatusRequestEntityTooLarge, want: "too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, events := e.runsQueued(t), e.count(t, "events")
			rec := e.do(t, req{method: http.MethodPost, target: tc.target, body: tc.body, headers: tc.headers})
			if tc.status >= 400 {
				require.Equal(t, tc.want, apiErr(t, rec, tc.status))
				require.Equal(t, before, e.runsQueued(t), "nothing is queued")
				require.Equal(t, events, e.count(t, "events"), "nothing is stored")
				return
			}
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			out := decode(t, rec)
			require.Equal(t, tc.want, out["status"])
			eventID, _ := out["event_id"].(string)
			runID, _ := out["run_id"].(string)
			require.Equal(t, events+1, e.count(t, "events"), "the event is stored")
			if tc.want == "filtered" {
				require.Equal(t, before, e.runsQueued(t))
				run, err := e.st.GetRun(context.Background(), runID)
				require.NoError(t, err)
				require.Equal(t, "filtered", run.Status)
				require.Equal(t, eventID, run.EventID)
				return
			}
			require.Equal(t, before+1, e.runsQueued(t))
			rm := e.lastRunMsg(t)
			require.Equal(t, runID, rm.RunID)
			require.Equal(t, eventID, rm.Event.ID)
			require.Equal(t, pipeline.ManualSource, rm.Event.Source)
			want := tc.body
			if want == "" {
				want = "{}"
			}
			require.JSONEq(t, want, string(rm.Event.Payload))
		})
	}
	t.Run("GET is not a run", func(t *testing.T) {
		rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/recipes/orders/run", headers: apiKey})
		require.Equal(t, "method_not_allowed", apiErr(t, rec, http.StatusMethodNotAllowed))
	})
}

func TestAPIStats(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	now := time.Now().UTC()
	for i, r := range []struct {
		recipe, status string
		ago            time.Duration
		retries        int
	}{
		{"a", "succeeded", time.Hour, 0}, {"a", "succeeded", 2 * time.Hour, 1}, {"a", "failed", 3 * time.Hour, 2},
		{"b", "dead", time.Hour, 4}, {"b", "succeeded", 30 * time.Hour, 0}, {"b", "filtered", time.Minute, 0},
	} {
		saveRun(t, e.st, &store.Run{ID: "r" + string(rune('0'+i)), Recipe: r.recipe, EventID: "e", Status: r.status,
			StartedAt: now.Add(-r.ago), Duration: time.Duration(i+1) * time.Second, Retries: r.retries})
	}
	tests := []struct {
		query    string
		runs     int64
		byStatus map[string]int64
		rate     any // null when no run succeeded, failed or went dead
		retries  int64
		// percentiles of the succeeded runs' durations, in milliseconds;
		// null (nil) when none succeeded
		p50, p95, p99 any
	}{
		{query: "", runs: 5, byStatus: map[string]int64{"succeeded": 2, "failed": 1, "dead": 1, "filtered": 1}, rate: 0.5, retries: 7,
			p50: 2000.0, p95: 2000.0, p99: 2000.0},
		{query: "since=48h", runs: 6, byStatus: map[string]int64{"succeeded": 3, "failed": 1, "dead": 1, "filtered": 1}, rate: 0.6, retries: 7,
			p50: 2000.0, p95: 5000.0, p99: 5000.0},
		{query: "since=2d", runs: 6, byStatus: map[string]int64{"succeeded": 3, "failed": 1, "dead": 1, "filtered": 1}, rate: 0.6, retries: 7,
			p50: 2000.0, p95: 5000.0, p99: 5000.0},
		{query: "recipe=a", runs: 3, byStatus: map[string]int64{"succeeded": 2, "failed": 1}, rate: 2.0 / 3, retries: 3,
			p50: 2000.0, p95: 2000.0, p99: 2000.0},
		// a dead run and no succeeded one: 0 %, and no duration to measure
		{query: "recipe=b&since=90m", runs: 2, byStatus: map[string]int64{"dead": 1, "filtered": 1}, rate: 0.0, retries: 4},
		{query: "recipe=b&since=5m", runs: 1, byStatus: map[string]int64{"filtered": 1}, rate: nil},
		{query: "recipe=none", runs: 0, byStatus: map[string]int64{}, rate: nil},
	}
	for _, tc := range tests {
		t.Run("stats "+tc.query, func(t *testing.T) {
			var got store.Stats
			e.get(t, "/api/v1/stats?"+tc.query, http.StatusOK, &got)
			require.Equal(t, tc.runs, got.Runs)
			require.Equal(t, tc.byStatus, got.ByStatus)
			require.Equal(t, tc.retries, got.Retries)
			if tc.p99 != nil {
				require.Equal(t, time.Duration(tc.p99.(float64))*time.Millisecond, got.P99, "a client reads the duration back")
			}

			var raw map[string]any
			e.get(t, "/api/v1/stats?"+tc.query, http.StatusOK, &raw)
			if tc.rate == nil {
				require.Nil(t, raw["success_rate"])
			} else {
				require.InDelta(t, tc.rate, raw["success_rate"], 1e-9)
			}
			require.Contains(t, raw, "success_rate")
			require.Contains(t, raw, "p50_ms")
			require.Equal(t, tc.p50, raw["p50_ms"])
			require.Equal(t, tc.p95, raw["p95_ms"])
			require.Equal(t, tc.p99, raw["p99_ms"])
			for _, k := range []string{"p50", "p95", "p99"} {
				require.NotContains(t, raw, k, "durations only in milliseconds")
			}
		})
	}
	for _, q := range []string{"since=yesterday", "since=0s", "since=-1h", "since=2024-01-01T00:00:00Z", "since=0d", "since=213504d"} {
		t.Run("bad "+q, func(t *testing.T) {
			rec := e.do(t, req{method: http.MethodGet, target: "/api/v1/stats?" + q, headers: apiKey})
			require.Equal(t, "bad_filter", apiErr(t, rec, http.StatusBadRequest))
		})
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	var ready atomic.Bool
	e := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.Ready = ready.Load; c.APIKeys = nil })
	noReady := newEnv(t, testRecipes, testSecrets, nil)
	t.Run("healthz", func(t *testing.T) {
		rec := e.do(t, req{method: http.MethodGet, target: "/healthz"})
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "ok", decode(t, rec)["status"])
	})
	t.Run("readyz", func(t *testing.T) {
		tests := []struct {
			name   string
			env    *env
			ready  bool
			status int
		}{
			{name: "starting", env: e, ready: false, status: http.StatusServiceUnavailable},
			{name: "running", env: e, ready: true, status: http.StatusOK},
			{name: "stopped again", env: e, ready: false, status: http.StatusServiceUnavailable},
			{name: "no ready func", env: noReady, status: http.StatusOK},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ready.Store(tc.ready)
				rec := tc.env.do(t, req{method: http.MethodGet, target: "/readyz"})
				if tc.status != http.StatusOK {
					require.Equal(t, "starting", apiErr(t, rec, tc.status))
					return
				}
				require.Equal(t, tc.status, rec.Code)
				require.Equal(t, "ready", decode(t, rec)["status"])
			})
		}
	})
	t.Run("readyz with the store closed", func(t *testing.T) {
		closed := newEnv(t, nil, nil, nil)
		require.NoError(t, closed.st.DB.Close())
		rec := closed.do(t, req{method: http.MethodGet, target: "/readyz"})
		require.Equal(t, "store_unavailable", apiErr(t, rec, http.StatusServiceUnavailable))
	})
	t.Run("wrong method is a JSON 405", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			rec := e.do(t, req{method: http.MethodPost, target: p})
			require.Equal(t, "method_not_allowed", apiErr(t, rec, http.StatusMethodNotAllowed), p)
			require.Equal(t, "GET, HEAD", rec.Header().Get("Allow"), p)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		e.storedEvent(t, e.post(t, "/plain", `{}`, nil))
		apiErr(t, e.post(t, "/nope", `{}`, nil), http.StatusNotFound)
		rec := e.do(t, req{method: http.MethodGet, target: "/metrics"})
		require.Equal(t, http.StatusOK, rec.Code)
		require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
		body := rec.Body.String()
		require.Contains(t, body, `sous_intake_accepted_total{kind="webhook"} 1`)
		require.Contains(t, body, `sous_intake_rejects_total{reason="unknown_path"} 1`)
		require.Contains(t, body, "go_goroutines")
	})
}

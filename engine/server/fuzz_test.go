package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	pathpkg "path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/store"
)

// validSig in the signature argument stands for a correct signature of the
// body, so that the fuzzer reaches the accepting paths of signed hooks.
const validSig = "<valid>"

// FuzzIntake sends arbitrary paths, content types, bodies and signatures
// to intake: it never panics, answers 2xx or 4xx, answers every refusal
// with a JSON error, stores exactly one event for an acceptance and
// nothing otherwise, and never shows the signing secret.
func FuzzIntake(f *testing.F) {
	e := newEnv(f, append(testRecipes, `version: 1
name: strict
trigger: {type: webhook.received, with: {path: /strict, id: "event.body.a.b + 1"}}
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:1/"}}]
`), testSecrets, func(c *server.Config) { c.MaxBody = 4 << 10 })
	seeds := []struct {
		path, ct string
		body     string
		sig      string
	}{
		{"orders", "application/json", `{"order":{"id":"A-1","total":120}}`, ""},
		{"orders", "application/json", `{"order":{"id":12345678901234567890}}`, ""},
		{"orders", "application/json", `{"order":{}}`, ""},
		{"orders", "application/json", `{"order":{"id":[1,{"x":null}]}}`, ""},
		{"orders", "", `[]`, ""},
		{"plain", "application/json; charset=utf-8", `{"a":[1,2.5,-0,1e3,"é"]}`, ""},
		{"plain", "application/x-www-form-urlencoded", "a=1&b=%20x&c", ""},
		{"plain", "application/x-www-form-urlencoded", "a=%zz;b", ""},
		{"plain", "text/plain", "hello", ""},
		{"plain", "application/json", `{"a":`, ""},
		{"plain", "application/json", "\xff\xfe{}", ""},
		{"plain", "application/json", `"\ud800"`, ""},
		{"plain", "application/json", `1e999`, ""},
		{"plain", "", "", ""},
		{"plain", ";;;", "{}", ""},
		{"signed", "application/json", `{"event":"paid"}`, validSig},
		{"signed", "application/json", `{"event":"paid"}`, "sha256=00"},
		{"signed", "application/json", `{"event":"paid"}`, "sha256=zz"},
		{"signed", "application/json", `{"event":"paid"}`, "sha1=abcd"},
		{"signed", "application/json", `not json`, validSig},
		{"custom", "application/x-www-form-urlencoded", "x=1", validSig},
		{"custom", "application/json", `{}`, ""},
		{"put", "application/json", `{}`, ""},
		{"strict", "application/json", `{"a":{"b":1}}`, ""},
		{"strict", "application/json", `{"a":{"b":"x"}}`, ""},
		{"strict", "application/json", `{"a":null}`, ""},
		{"", "application/json", `{}`, ""},
		{"nope", "application/json", `{}`, ""},
		{"../api/v1/runs", "application/json", `{}`, ""},
		{"plain/../orders", "application/json", `{}`, ""},
		{"a//b?x=1#y", "application/json", `{}`, ""},
		{"plain", "application/json", `{"pad":"` + strings.Repeat("x", 5000) + `"}`, ""},
		{"plain", "application/json", strings.Repeat("[", 20000), ""},
	}
	for _, s := range seeds {
		f.Add(s.path, s.ct, []byte(s.body), s.sig)
	}
	f.Fuzz(func(t *testing.T, path, contentType string, body []byte, sig string) {
		if sig == validSig {
			sig = server.Sign(hookSecret, body)
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.URL = &url.URL{Path: "/hooks/" + path}
		r.RequestURI = r.URL.RequestURI()
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.Header.Set("X-Signature-256", sig)
		r.Header.Set("X-Hub-Signature-256", sig)
		before := e.rows(t)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)

		require.NotContains(t, rec.Body.String(), hookSecret)
		switch rec.Code {
		case http.StatusAccepted:
			out := decode(t, rec)
			require.Equal(t, "accepted", out["status"])
			id, _ := out["event_id"].(string)
			ev, err := e.st.GetEvent(context.Background(), id)
			require.NoError(t, err)
			require.True(t, json.Valid(ev.Payload), "stored payload is JSON: %q", ev.Payload)
			require.Equal(t, rows{before.events + 1, before.queue + 1, before.dedup + 1}, e.rows(t))
		case http.StatusOK:
			require.Equal(t, "duplicate", decode(t, rec)["status"])
			require.Equal(t, before, e.rows(t))
		default:
			require.True(t, rec.Code >= 400 && rec.Code < 500, "status %d: %s", rec.Code, rec.Body.String())
			apiErr(t, rec, rec.Code)
			require.Equal(t, before, e.rows(t), "a refusal stores nothing")
		}
	})
}

// FuzzRunRecipe sends arbitrary content types and bodies to POST
// /api/v1/recipes/{name}/run: it never panics, answers 2xx or a JSON 4xx,
// and stores one event for a 2xx and nothing otherwise.
func FuzzRunRecipe(f *testing.F) {
	e := newEnv(f, testRecipes, testSecrets, func(c *server.Config) { c.MaxBody = 4 << 10 })
	for _, s := range []struct{ name, ct, body string }{
		{"orders", "application/json", `{"body":{"order":{"id":"A-1","total":120}}}`},
		{"orders", "application/json", `{"body":{"order":{"total":"x"}}}`},
		{"plain", "", ""},
		{"plain", "application/json", `[]`},
		{"plain", "application/json", `{"a":`},
		{"plain", "text/plain", `{}`},
		{"nope", "application/json", `{}`},
		{"orders", "application/json", "\xff{}"},
	} {
		f.Add(s.name, s.ct, s.body)
	}
	f.Fuzz(func(t *testing.T, name, ct, body string) {
		if name == "" || name == "." || name == ".." {
			return // not a path segment: the mux redirects
		}
		before := e.count(t, "events")
		rec := e.do(t, req{target: "/api/v1/recipes/" + url.PathEscape(name) + "/run", body: body,
			headers: map[string]string{"Content-Type": ct, "Authorization": "Bearer key-one"}})
		switch {
		case rec.Code == http.StatusOK || rec.Code == http.StatusAccepted:
			require.Equal(t, before+1, e.count(t, "events"), "one event for a run")
		case rec.Code >= 400 && rec.Code < 500:
			apiErr(t, rec, rec.Code)
			require.Equal(t, before, e.count(t, "events"), "nothing stored for a refusal")
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}

// FuzzAPI sends arbitrary methods, paths, queries, API keys and bodies to
// the management API: it never panics and never answers 5xx; without a
// valid key it answers 401 (or the mux's redirect of an unclean path),
// never 2xx; every refusal is a JSON error; a GET or HEAD stores nothing;
// and no answer shows an API key.
func FuzzAPI(f *testing.F) {
	e := newEnv(f, testRecipes, testSecrets, func(c *server.Config) { c.MaxBody = 4 << 10 })
	ev := e.post(f, "/orders", `{"order":{"id":"A-1","total":120}}`, nil)
	require.Equal(f, http.StatusAccepted, ev.Code)
	eventID, _ := decode(f, ev)["event_id"].(string)
	saveRun(f, e.st, &store.Run{ID: "run_1", Recipe: "orders", EventID: eventID, Status: "failed", StartedAt: time.Now(),
		ErrorStep: "s", Reason: "timeout", Error: "boom", Attempt: 1, Record: json.RawMessage(`{"steps":[]}`)})
	methods := []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPatch, "BREW"}
	const (
		noKey = iota
		bearer
		header
		wrongKey
		keyModes
	)
	for _, s := range []struct {
		method uint8
		path   string
		query  string
		key    uint8
		body   string
	}{
		{0, "recipes", "", bearer, ""},
		{0, "recipes/orders", "", header, ""},
		{0, "recipes/nope", "", bearer, ""},
		{1, "recipes/orders/run", "", bearer, `{"body":{"order":{"id":"B"}}}`},
		{0, "runs", "status=failed&since=24h&until=2026-01-02T03:04:05Z&limit=5&recipe=orders", bearer, ""},
		{0, "runs", "status=bogus", bearer, ""},
		{0, "runs", "since=-5h&limit=0", bearer, ""},
		{0, "runs", "since=1e309h&until=%zz", bearer, ""},
		{0, "runs/run_1", "", bearer, ""},
		{0, "runs/nope", "", header, ""},
		{1, "runs/run_1/replay", "from_failed_step=true", bearer, ""},
		{1, "runs/nope/replay", "", bearer, ""},
		{0, "stats", "since=1h&recipe=orders", bearer, ""},
		{0, "stats", "since=forever", bearer, ""},
		{0, "runs", "", noKey, ""},
		{1, "runs/run_1/replay", "", wrongKey, ""},
		{3, "runs", "", bearer, ""},
		{2, "recipes", "", noKey, ""},
		{0, "nowhere", "", noKey, ""},
		{0, "../hooks/orders", "", bearer, ""},
		{0, "runs//x", "", bearer, ""},
		{6, "stats", "", bearer, "x"},
	} {
		f.Add(s.method, s.path, s.query, s.key, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method uint8, path, query string, key uint8, body []byte) {
		m := methods[int(method)%len(methods)]
		r := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
		r.Method = m
		r.URL = &url.URL{Path: "/api/v1/" + path, RawQuery: query}
		r.RequestURI = r.URL.RequestURI()
		r.Header.Set("Content-Type", "application/json")
		valid := false
		switch key % keyModes {
		case bearer:
			r.Header.Set("Authorization", "Bearer key-one")
			valid = true
		case header:
			r.Header.Set("X-API-Key", "key-two")
			valid = true
		case wrongKey:
			r.Header.Set("Authorization", "Bearer key-three")
		}
		before := e.rows(t)
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)

		require.Less(t, rec.Code, 500, "%s %s?%s: %s", m, r.URL.Path, query, rec.Body.String())
		require.NotContains(t, rec.Body.String(), "key-one")
		require.NotContains(t, rec.Body.String(), "key-two")
		if rec.Code >= 300 && rec.Code < 400 {
			p := "/api/v1/" + path
			clean := pathpkg.Clean(p)
			if strings.HasSuffix(p, "/") {
				clean += "/"
			}
			require.NotEqual(t, p, clean, "a redirect only for a path the mux cleans")
			return
		}
		if !valid {
			require.Equal(t, http.StatusUnauthorized, rec.Code, "%s %s without a valid key: %s", m, r.URL.Path, rec.Body.String())
		}
		if rec.Code >= 400 && m != http.MethodHead {
			apiErr(t, rec, rec.Code)
		}
		if m == http.MethodGet || m == http.MethodHead {
			require.Equal(t, before, e.rows(t), "a read stores nothing")
		}
	})
}

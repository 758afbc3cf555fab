package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/server"
)

func TestIntakeAccepts(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	tests := []struct {
		name   string
		req    req
		path   string
		method string
		body   any
		query  map[string]string
		header [2]string // a header the payload keeps
	}{
		{
			name: "json body, headers and query",
			req: req{target: "/hooks/orders?shop=eu&shop=us&x=1", body: `{"order":{"id":"A-1","total":120,"lines":[1,2]}}`,
				headers: map[string]string{"Content-Type": "application/json", "X-Shop": "eu-1"}},
			path: "/orders", method: "POST",
			body:   map[string]any{"order": map[string]any{"id": "A-1", "total": json.Number("120"), "lines": []any{json.Number("1"), json.Number("2")}}},
			query:  map[string]string{"shop": "eu", "x": "1"},
			header: [2]string{"X-Shop", "eu-1"},
		},
		{
			name: "json with a charset and no content type default",
			req: req{target: "/hooks/plain", body: `{"a":[true,null,"é"]}`,
				headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
			path: "/plain", method: "POST", body: map[string]any{"a": []any{true, nil, "é"}}, query: map[string]string{},
		},
		{
			name: "no content type is JSON",
			req:  req{target: "/hooks/plain", body: `[1,"two"]`},
			path: "/plain", method: "POST", body: []any{json.Number("1"), "two"}, query: map[string]string{},
		},
		{
			name: "vendor +json type",
			req: req{target: "/hooks/plain", body: `{"k":"v"}`,
				headers: map[string]string{"Content-Type": "application/vnd.github+json"}},
			path: "/plain", method: "POST", body: map[string]any{"k": "v"}, query: map[string]string{},
		},
		{
			name: "form body",
			req: req{target: "/hooks/plain", body: "name=Ann+Lee&amount=12.50&tag=a&tag=b&empty=",
				headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
			path: "/plain", method: "POST",
			body:  map[string]any{"name": "Ann Lee", "amount": "12.50", "tag": "a", "empty": ""},
			query: map[string]string{},
		},
		{
			name: "JSON sent as text (AWS SNS)",
			req: req{target: "/hooks/plain", body: `{"Type":"Notification","Message":"hi"}`,
				headers: map[string]string{"Content-Type": "text/plain; charset=UTF-8"}},
			path: "/plain", method: "POST", body: map[string]any{"Type": "Notification", "Message": "hi"}, query: map[string]string{},
		},
		{
			name: "text that is no JSON: a string",
			req:  req{target: "/hooks/plain", body: "deploy finished", headers: map[string]string{"Content-Type": "text/plain"}},
			path: "/plain", method: "POST", body: "deploy finished", query: map[string]string{},
		},
		{
			name: "empty JSON body",
			req:  req{target: "/hooks/plain", headers: map[string]string{"Content-Type": "application/json"}},
			path: "/plain", method: "POST", body: nil, query: map[string]string{},
		},
		{
			name: "blank JSON body",
			req:  req{target: "/hooks/plain", body: " \n\t ", headers: map[string]string{"Content-Type": "application/json"}},
			path: "/plain", method: "POST", body: nil, query: map[string]string{},
		},
		{
			name: "empty body without a length",
			req:  req{target: "/hooks/plain", noLength: true},
			path: "/plain", method: "POST", body: nil, query: map[string]string{},
		},
		{
			name: "another accepted method",
			req:  req{method: http.MethodPatch, target: "/hooks/put?v=2", body: `{"n":1}`},
			path: "/put", method: "PATCH", body: map[string]any{"n": json.Number("1")}, query: map[string]string{"v": "2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rows(t)
			accepted := counterValue(t, e.m.IntakeAccepted.WithLabelValues("webhook"))
			rec := e.do(t, tc.req)
			ev, p := e.storedEvent(t, rec)
			require.Equal(t, "webhook.received", ev.Type)
			require.Equal(t, tc.path, ev.Source)
			require.True(t, strings.HasPrefix(ev.DedupKey, "hook:"+tc.path+":"), ev.DedupKey)
			require.False(t, ev.ReceivedAt.IsZero())
			require.Equal(t, tc.body, p.Body)
			require.Equal(t, tc.method, p.Method)
			require.Equal(t, tc.path, p.Path)
			require.Equal(t, tc.query, p.Query)
			if tc.header[0] != "" {
				require.Equal(t, tc.header[1], p.Headers[tc.header[0]])
			}
			require.Equal(t, rows{before.events + 1, before.queue + 1, before.dedup + 1}, e.rows(t))
			require.Equal(t, accepted+1, counterValue(t, e.m.IntakeAccepted.WithLabelValues("webhook")))
		})
	}
}

// TestIntakeQueuesTheEvent checks that the queued message names the event
// and leaves its payload to the events table (written in the same
// transaction).
func TestIntakeQueuesTheEvent(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	rec := e.post(t, "/plain", `{"x":1}`, nil)
	ev, _ := e.storedEvent(t, rec)
	var raw []byte
	require.NoError(t, e.st.DB.QueryRow("SELECT payload FROM queue WHERE topic = ?", broker.TopicEvents).Scan(&raw))
	var msg broker.EventMsg
	require.NoError(t, json.Unmarshal(raw, &msg))
	require.Equal(t, ev.ID, msg.ID)
	require.Equal(t, "/plain", msg.Source)
	require.Empty(t, msg.Payload)
	require.JSONEq(t, `{"x":1}`, string(mustField(t, ev.Payload, "body")))
}

func mustField(t *testing.T, raw []byte, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	return m[name]
}

func TestIntakeDedup(t *testing.T) {
	tests := []struct {
		name string
		path string
		// two deliveries and whether the second is a duplicate
		firstBody, sndBod string
		firstHdr, sndHdr  map[string]string
		dup               bool
		dupKeyContains    string
	}{
		{name: "same id from the id expression", path: "/orders", firstBody: `{"order":{"id":"A-1","total":1}}`,
			sndBod: `{"order":{"id":"A-1","total":999}}`, dup: true, dupKeyContains: "A-1"},
		{name: "numeric id equal to a string id", path: "/orders", firstBody: `{"order":{"id":42}}`,
			sndBod: `{"order":{"id":"42"}}`, dup: true},
		{name: "different ids", path: "/orders", firstBody: `{"order":{"id":"A-1"}}`, sndBod: `{"order":{"id":"A-2"}}`},
		{name: "id expression wins over delivery headers", path: "/orders",
			firstBody: `{"order":{"id":"A-1"}}`, firstHdr: map[string]string{"Idempotency-Key": "k"},
			sndBod: `{"order":{"id":"A-2"}}`, sndHdr: map[string]string{"Idempotency-Key": "k"}},
		{name: "Idempotency-Key", path: "/plain", firstBody: `{"a":1}`, sndBod: `{"a":2}`,
			firstHdr: map[string]string{"Idempotency-Key": "key-1"}, sndHdr: map[string]string{"Idempotency-Key": "key-1"}, dup: true},
		{name: "X-GitHub-Delivery", path: "/plain", firstBody: `{"a":1}`, sndBod: `{"a":1}`,
			firstHdr: map[string]string{"X-GitHub-Delivery": "72d3162e"}, sndHdr: map[string]string{"X-GitHub-Delivery": "72d3162e"}, dup: true},
		{name: "different delivery ids", path: "/plain", firstBody: `{"a":1}`, sndBod: `{"a":1}`,
			firstHdr: map[string]string{"X-GitHub-Delivery": "one"}, sndHdr: map[string]string{"X-GitHub-Delivery": "two"}},
		{name: "same value in different delivery headers", path: "/plain", firstBody: `{"a":1}`, sndBod: `{"a":1}`,
			firstHdr: map[string]string{"Idempotency-Key": "v"}, sndHdr: map[string]string{"X-Request-Id": "v"}},
		{name: "neither: identical posts are two events", path: "/plain", firstBody: `{"a":1}`, sndBod: `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testRecipes, testSecrets, nil)
			first := e.post(t, tc.path, tc.firstBody, tc.firstHdr)
			e.storedEvent(t, first)
			second := e.post(t, tc.path, tc.sndBod, tc.sndHdr)
			if !tc.dup {
				e.storedEvent(t, second)
				require.Equal(t, rows{2, 2, 2}, e.rows(t))
				require.Zero(t, counterValue(t, e.m.IntakeDup.WithLabelValues("webhook")))
				return
			}
			require.Equal(t, http.StatusOK, second.Code, second.Body.String())
			out := decode(t, second)
			require.Equal(t, "duplicate", out["status"])
			require.NotContains(t, out, "event_id")
			if tc.dupKeyContains != "" {
				require.Contains(t, out["dedup_key"], tc.dupKeyContains)
			}
			require.Equal(t, rows{1, 1, 1}, e.rows(t), "a duplicate stores nothing")
			require.Equal(t, 1.0, counterValue(t, e.m.IntakeDup.WithLabelValues("webhook")))
			// the stored event is the first delivery
			_, p := e.storedEvent(t, first)
			b, _ := json.Marshal(p.Body)
			require.JSONEq(t, tc.firstBody, string(b))
		})
	}
}

// TestIntakeDedupLargeIDs: numeric ids beyond float64 precision are
// distinct deliveries and are stored exactly.
func TestIntakeDedupLargeIDs(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	ids := []string{"9007199254740992", "9007199254740993", "1234567890123456789", "1234567890123456788",
		"-9007199254740993", "123456789012345678901234567890", "123456789012345678901234567891"}
	keys := map[string]bool{}
	for _, id := range ids {
		rec := e.post(t, "/orders", `{"order":{"id":`+id+`,"total":1.5}}`, nil)
		ev, _ := e.storedEvent(t, rec)
		require.Contains(t, string(ev.Payload), `"id":`+id+`,`, "the id is stored as sent")
		require.Contains(t, string(ev.Payload), `"total":1.5`)
		require.False(t, keys[ev.DedupKey], "two ids share the dedup key %s", ev.DedupKey)
		keys[ev.DedupKey] = true
		if id != "9007199254740992" { // that one a float64 holds exactly
			require.Equal(t, "hook:/orders:"+id, ev.DedupKey)
		}
		dup := e.post(t, "/orders", `{"order":{"id":`+id+`}}`, nil)
		require.Equal(t, http.StatusOK, dup.Code, dup.Body.String())
	}
	require.Equal(t, len(ids), e.count(t, "events"))
}

// TestIntakeConcurrentDuplicates: of many simultaneous deliveries of one
// id, exactly one is accepted.
func TestIntakeConcurrentDuplicates(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	const n = 24
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.post(t, "/orders", fmt.Sprintf(`{"order":{"id":"same","n":%d}}`, i), nil).Code
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	require.Equal(t, map[int]int{http.StatusAccepted: 1, http.StatusOK: n - 1}, count)
	require.Equal(t, rows{1, 1, 1}, e.rows(t))
}

func TestIntakeSignatures(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	body := `{"event":"paid","amount":10}`
	good := server.Sign(hookSecret, []byte(body))
	require.Regexp(t, `^sha256=[0-9a-f]{64}$`, good)
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		body    string
		ok      bool
	}{
		{name: "valid", path: "/signed", headers: map[string]string{"X-Signature-256": good}, ok: true},
		{name: "valid with surrounding space", path: "/signed", headers: map[string]string{"X-Signature-256": " " + good + " "}, ok: true},
		{name: "valid in upper-case hex", path: "/signed", headers: map[string]string{"X-Signature-256": "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256="))}, ok: true},
		{name: "valid, custom header", path: "/custom", headers: map[string]string{"X-Hub-Signature-256": good}, ok: true},
		{name: "valid, form body", path: "/signed", body: "a=1&b=2",
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Signature-256": server.Sign(hookSecret, []byte("a=1&b=2"))}, ok: true},
		{name: "missing", path: "/signed"},
		{name: "empty", path: "/signed", headers: map[string]string{"X-Signature-256": ""}},
		{name: "wrong secret", path: "/signed", headers: map[string]string{"X-Signature-256": server.Sign("other", []byte(body))}},
		{name: "other body", path: "/signed", headers: map[string]string{"X-Signature-256": server.Sign(hookSecret, []byte(body+" "))}},
		{name: "body changed", path: "/signed", body: `{"event":"paid","amount":1000}`, headers: map[string]string{"X-Signature-256": good}},
		{name: "wrong prefix", path: "/signed", headers: map[string]string{"X-Signature-256": "sha1=" + strings.TrimPrefix(good, "sha256=")}},
		{name: "no prefix", path: "/signed", headers: map[string]string{"X-Signature-256": strings.TrimPrefix(good, "sha256=")}},
		{name: "upper-case prefix", path: "/signed", headers: map[string]string{"X-Signature-256": "SHA256=" + strings.TrimPrefix(good, "sha256=")}},
		{name: "non-hex", path: "/signed", headers: map[string]string{"X-Signature-256": "sha256=" + strings.Repeat("zz", 32)}},
		{name: "truncated", path: "/signed", headers: map[string]string{"X-Signature-256": good[:len(good)-2]}},
		{name: "odd length", path: "/signed", headers: map[string]string{"X-Signature-256": good[:len(good)-1]}},
		{name: "the secret itself", path: "/signed", headers: map[string]string{"X-Signature-256": "sha256=" + hookSecret}},
		{name: "default header on a custom-header hook", path: "/custom", headers: map[string]string{"X-Signature-256": good}},
		{name: "custom header on a default-header hook", path: "/signed", headers: map[string]string{"X-Hub-Signature-256": good}},
		{name: "bad JSON with a bad signature", path: "/signed", body: `{"nope`, headers: map[string]string{"X-Signature-256": good}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := body
			if tc.body != "" {
				b = tc.body
			}
			h := map[string]string{"Content-Type": "application/json"}
			for k, v := range tc.headers {
				h[k] = v
			}
			before := e.rows(t)
			rejects := counterValue(t, e.m.IntakeRejects.WithLabelValues("bad_signature"))
			rec := e.do(t, req{target: "/hooks" + tc.path, body: b, headers: h})
			require.NotContains(t, rec.Body.String(), hookSecret, "the secret never leaves the server")
			if tc.ok {
				e.storedEvent(t, rec)
				require.Equal(t, before.events+1, e.count(t, "events"))
				return
			}
			require.Equal(t, "bad_signature", apiErr(t, rec, http.StatusUnauthorized))
			if tc.name == "missing" || tc.name == "empty" {
				require.Contains(t, rec.Body.String(), "the request has no X-Signature-256 header", "a missing signature says so")
			}
			require.Equal(t, before, e.rows(t), "nothing is stored")
			require.Equal(t, rejects+1, counterValue(t, e.m.IntakeRejects.WithLabelValues("bad_signature")))
		})
	}
}

func TestIntakeRejects(t *testing.T) {
	const maxBody = 64
	e := newEnv(t, append(testRecipes, `version: 1
name: strict
trigger: {type: webhook.received, with: {path: /strict, id: "event.body.order.id"}}
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink"}
`, `version: 1
name: computed
trigger: {type: webhook.received, with: {path: /computed, id: "event.body.a.b.c + 1"}}
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink"}
`), testSecrets, func(c *server.Config) { c.MaxBody = maxBody })
	big := `{"pad":"` + strings.Repeat("x", maxBody) + `"}`
	jsonCT := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name   string
		req    req
		status int
		code   string
		allow  string
	}{
		{name: "malformed JSON", req: req{target: "/hooks/plain", body: `{"a":`, headers: jsonCT}, status: 400, code: "bad_body"},
		{name: "trailing garbage after JSON", req: req{target: "/hooks/plain", body: `{"a":1} x`, headers: jsonCT}, status: 400, code: "bad_body"},
		{name: "two JSON values", req: req{target: "/hooks/plain", body: `{"a":1}{"a":2}`, headers: jsonCT}, status: 400, code: "bad_body"},
		{name: "JSON that is text", req: req{target: "/hooks/plain", body: `hello`}, status: 400, code: "bad_body"},
		{name: "number out of range", req: req{target: "/hooks/plain", body: `{"a":1e999}`, headers: jsonCT}, status: 400, code: "bad_body"},
		{name: "bad form escape", req: req{target: "/hooks/plain", body: "a=%zz",
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, status: 400, code: "bad_body"},
		{name: "too large with a length", req: req{target: "/hooks/plain", body: big, headers: jsonCT}, status: 413, code: "too_large"},
		{name: "too large without a length", req: req{target: "/hooks/plain", body: big, headers: jsonCT, noLength: true}, status: 413, code: "too_large"},
		{name: "too large on a signed hook", req: req{target: "/hooks/signed", body: big,
			headers: map[string]string{"X-Signature-256": server.Sign(hookSecret, []byte(big))}}, status: 413, code: "too_large"},
		{name: "an image", req: req{target: "/hooks/plain", body: `{"a":1}`, headers: map[string]string{"Content-Type": "image/png"}},
			status: 415, code: "unsupported_media_type"},
		{name: "text that is not UTF-8", req: req{target: "/hooks/plain", body: "caf\xe9", headers: map[string]string{"Content-Type": "text/plain"}},
			status: 400, code: "bad_body"},
		{name: "multipart", req: req{target: "/hooks/plain", body: `--x--`, headers: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}},
			status: 415, code: "unsupported_media_type"},
		{name: "unparsable content type", req: req{target: "/hooks/plain", body: `{}`, headers: map[string]string{"Content-Type": "/;;"}},
			status: 415, code: "unsupported_media_type"},
		{name: "GET on a POST hook", req: req{method: http.MethodGet, target: "/hooks/plain"}, status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "DELETE on a POST hook", req: req{method: http.MethodDelete, target: "/hooks/orders"}, status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "POST on a PUT hook", req: req{target: "/hooks/put", body: `{}`}, status: 405, code: "method_not_allowed", allow: "PUT, PATCH"},
		{name: "unknown hook", req: req{target: "/hooks/nope", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "hook root", req: req{target: "/hooks/", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "hooks without a slash", req: req{target: "/hooks", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "trailing slash is another path", req: req{target: "/hooks/plain/", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "case matters", req: req{target: "/hooks/Plain", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "unclean path is not redirected", req: req{target: "/hooks/x/../plain", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "double slash is not redirected", req: req{target: "/hooks//plain", body: `{}`}, status: 404, code: "unknown_path"},
		{name: "id expression fails", req: req{target: "/hooks/computed", body: `{"a":{}}`, headers: jsonCT}, status: 422, code: "bad_id"},
		{name: "id missing", req: req{target: "/hooks/strict", body: `{"order":{}}`, headers: jsonCT}, status: 422, code: "bad_id"},
		{name: "id empty", req: req{target: "/hooks/strict", body: `{"order":{"id":""}}`, headers: jsonCT}, status: 422, code: "bad_id"},
		{name: "no body for an id", req: req{target: "/hooks/strict", headers: jsonCT}, status: 422, code: "bad_id"},
		{name: "body not an object", req: req{target: "/hooks/strict", body: `[1]`, headers: jsonCT}, status: 422, code: "bad_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rows(t)
			rejects := counterValue(t, e.m.IntakeRejects.WithLabelValues(tc.code))
			rec := e.do(t, tc.req)
			require.Equal(t, tc.code, apiErr(t, rec, tc.status))
			require.Equal(t, tc.allow, rec.Header().Get("Allow"))
			require.Equal(t, before, e.rows(t), "nothing is stored")
			require.Equal(t, rejects+1, counterValue(t, e.m.IntakeRejects.WithLabelValues(tc.code)))
			require.NotContains(t, rec.Body.String(), "recipe.yaml", "the recipe file is for the log, not the sender")
		})
	}
	t.Run("a body of exactly the limit is accepted", func(t *testing.T) {
		b := `{"pad":"` + strings.Repeat("x", maxBody-10) + `"}`
		require.Len(t, b, maxBody)
		e.storedEvent(t, e.post(t, "/plain", b, nil))
		e.storedEvent(t, e.do(t, req{target: "/hooks/plain", body: b, noLength: true}))
	})
	t.Run("paths outside /hooks answer JSON 404", func(t *testing.T) {
		for _, p := range []string{"/", "/nope", "/hook/plain", "/plain", "/metrics/x", "/api-docs"} {
			before := counterValue(t, e.m.IntakeRejects.WithLabelValues("unknown_path"))
			rec := e.do(t, req{method: http.MethodPost, target: p, body: `{}`})
			require.Equal(t, "not_found", apiErr(t, rec, http.StatusNotFound), p)
			require.Equal(t, before, counterValue(t, e.m.IntakeRejects.WithLabelValues("unknown_path")), "not an intake reject")
		}
		require.Equal(t, rows{2, 2, 2}, e.rows(t))
	})
}

// TestIntakeSecretNotProvided: a recipe whose secret renders empty is left
// out of the index, so its path never accepts unsigned requests.
func TestIntakeSecretNotProvided(t *testing.T) {
	for _, secrets := range []map[string]string{nil, {"OTHER": "x"}, {"HOOK": ""}} {
		t.Run(fmt.Sprint(secrets), func(t *testing.T) {
			recs := parseRecipes(t, testRecipes)
			ix, errs := pipeline.BuildIndex(recs, secrets)
			require.Len(t, errs, 2, "signed and custom are refused: %v", errs)
			for _, err := range errs {
				require.Contains(t, err.Error(), "secret is empty")
			}
			require.Nil(t, ix.Hook("/signed"))
			require.Nil(t, ix.Hook("/custom"))
			require.NotNil(t, ix.Hook("/plain"))

			e := newEnv(t, nil, nil, nil)
			e.eng.SetIndex(ix)
			for _, p := range []string{"/signed", "/custom"} {
				for _, sig := range []string{"", server.Sign("", []byte(`{}`))} {
					rec := e.post(t, p, `{}`, map[string]string{"X-Signature-256": sig, "X-Hub-Signature-256": sig})
					require.Equal(t, "unknown_path", apiErr(t, rec, http.StatusNotFound))
				}
			}
			require.Equal(t, rows{}, e.rows(t))
			e.storedEvent(t, e.post(t, "/plain", `{}`, nil))
		})
	}
}

// TestIntakeFollowsReload: intake reads the engine's current index.
func TestIntakeFollowsReload(t *testing.T) {
	e := newEnv(t, testRecipes[1:2], nil, nil) // plain only
	e.storedEvent(t, e.post(t, "/plain", `{}`, nil))
	ix, errs := pipeline.BuildIndex(parseRecipes(t, testRecipes[:1]), nil) // orders only
	require.Empty(t, errs)
	e.eng.SetIndex(ix)
	require.Equal(t, "unknown_path", apiErr(t, e.post(t, "/plain", `{}`, nil), http.StatusNotFound))
	e.storedEvent(t, e.post(t, "/orders", `{"order":{"id":1}}`, nil))
}

// TestIntakeExactPaths: intake looks a hook up by its exact path; the
// paths the trigger allows are reached as written, never redirected.
func TestIntakeExactPaths(t *testing.T) {
	var srcs []string
	for i, p := range []string{"/", "/a//b", "/v1/./in", "/x/../y", "/dots...", "/t~il_de-1.2/"} {
		srcs = append(srcs, fmt.Sprintf(`version: 1
name: p%d
trigger: {type: webhook.received, with: {path: %q}}
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:1/"}}]
`, i, p))
	}
	e := newEnv(t, srcs, nil, nil)
	for _, p := range []string{"/", "/a//b", "/v1/./in", "/x/../y", "/dots...", "/t~il_de-1.2/"} {
		t.Run(p, func(t *testing.T) {
			_, pl := e.storedEvent(t, e.post(t, p, `{}`, nil))
			require.Equal(t, p, pl.Path)
		})
	}
	for _, p := range []string{"/a/b", "/v1/in", "/y", "/t~il_de-1.2"} {
		t.Run("not "+p, func(t *testing.T) {
			require.Equal(t, "unknown_path", apiErr(t, e.post(t, p, `{}`, nil), http.StatusNotFound))
		})
	}
	t.Run("escaped path is decoded", func(t *testing.T) {
		for _, target := range []string{"/hooks/a/%2Fb", "/hooks/%61//b"} {
			_, pl := e.storedEvent(t, e.do(t, req{target: target, body: `{}`}))
			require.Equal(t, "/a//b", pl.Path)
		}
	})
}

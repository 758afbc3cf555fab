package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/metrics"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

// hookSecret is the signing secret of the signed test hooks.
const hookSecret = "s3cret-7f1d9c"

// testRecipes are the recipes most tests load: one per intake behaviour.
var testRecipes = []string{
	// dedup by an expression on the body
	`version: 1
name: orders
description: orders from the shop
trigger: {type: webhook.received, with: {path: /orders, id: event.body.order.id}}
filter: event.body.order.total >= 100
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink", json: {id: "{{ event.body.order.id }}"}}
`,
	// no id expression: dedup by delivery headers, if any
	`version: 1
name: plain
trigger: {type: webhook.received, with: {path: /plain}}
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink"}
`,
	// signed with the default header
	`version: 1
name: signed
trigger: {type: webhook.received, with: {path: /signed, secret: "{{ secrets.HOOK }}"}}
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink"}
`,
	// signed with a custom header
	`version: 1
name: custom
trigger: {type: webhook.received, with: {path: /custom, secret: "{{ secrets.HOOK }}", signature_header: X-Hub-Signature-256}}
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink"}
`,
	// other methods than POST
	`version: 1
name: put
trigger: {type: webhook.received, with: {path: /put, methods: [PUT, PATCH]}}
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink"}
`,
}

// testSecrets are the secrets BuildIndex renders the triggers with.
var testSecrets = map[string]string{"HOOK": hookSecret}

// env is a server over a real SQLite store, SQL broker and engine. The
// engine does not run, so whatever intake queues stays in the queue table.
type env struct {
	st  *store.Store
	b   *sqlite.Broker
	eng *pipeline.Engine
	m   *metrics.Metrics
	srv *server.Server
}

// newEnv builds an env with the recipes indexed under secrets; mod, when
// not nil, adjusts the server's config.
func newEnv(tb testing.TB, srcs []string, secrets map[string]string, mod func(*server.Config)) *env {
	tb.Helper()
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, tb.TempDir())
	require.NoError(tb, err)
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(tb, st.Migrate(ctx))
	b, err := sqlite.New(ctx, st, sqlqueue.Config{Poll: 20 * time.Millisecond})
	require.NoError(tb, err)
	m := metrics.New()
	eng, err := pipeline.New(pipeline.Config{Store: st, Broker: b, Metrics: m,
		NewRunner: func() *runner.Runner { return &runner.Runner{} }})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_ = b.Close()
		_ = read.Close()
		_ = write.Close()
	})
	ix, errs := pipeline.BuildIndex(parseRecipes(tb, srcs), secrets)
	require.Empty(tb, errs)
	eng.SetIndex(ix)
	cfg := server.Config{Engine: eng, Store: st, Metrics: m, APIKeys: []string{"key-one", "key-two"}}
	if mod != nil {
		mod(&cfg)
	}
	return &env{st: st, b: b, eng: eng, m: m, srv: server.New(cfg)}
}

func parseRecipes(tb testing.TB, srcs []string) []*recipes.Recipe {
	tb.Helper()
	l := &recipes.Loader{}
	out := make([]*recipes.Recipe, 0, len(srcs))
	for i, src := range srcs {
		rec, diags := l.Parse("recipe.yaml", []byte(src))
		require.False(tb, diags.HasErrors(), "recipe %d: %v", i, diags)
		out = append(out, rec)
	}
	return out
}

// req describes one request.
type req struct {
	method  string
	target  string
	body    string
	headers map[string]string
	// noLength sends the body without a Content-Length (chunked).
	noLength bool
}

// do serves a request.
func (e *env) do(tb testing.TB, r req) *httptest.ResponseRecorder {
	tb.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	var body io.Reader = strings.NewReader(r.body)
	if r.noLength {
		body = io.MultiReader(strings.NewReader(r.body)) // hides the length
	}
	hr := httptest.NewRequest(r.method, r.target, body)
	if r.noLength {
		hr.ContentLength = -1
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, hr)
	return rec
}

// post sends a JSON body to a hook.
func (e *env) post(tb testing.TB, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	tb.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	return e.do(tb, req{target: "/hooks" + path, body: body, headers: h})
}

// count counts the rows of a table.
func (e *env) count(tb testing.TB, table string) int {
	tb.Helper()
	var n int
	require.NoError(tb, e.st.DB.QueryRow("SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// runsQueued counts the run messages in the queue table.
func (e *env) runsQueued(tb testing.TB) int {
	tb.Helper()
	var n int
	require.NoError(tb, e.st.DB.QueryRow("SELECT COUNT(*) FROM queue WHERE topic = ?", broker.TopicRuns).Scan(&n))
	return n
}

// lastRunMsg decodes the run message queued last.
func (e *env) lastRunMsg(tb testing.TB) pipeline.RunMsg {
	tb.Helper()
	var raw []byte
	require.NoError(tb, e.st.DB.QueryRow("SELECT payload FROM queue WHERE topic = ? ORDER BY seq DESC LIMIT 1", broker.TopicRuns).Scan(&raw))
	var rm pipeline.RunMsg
	require.NoError(tb, json.Unmarshal(raw, &rm))
	return rm
}

// rows counts what intake writes: events, queued messages, dedup keys.
type rows struct{ events, queue, dedup int }

func (e *env) rows(tb testing.TB) rows {
	tb.Helper()
	return rows{events: e.count(tb, "events"), queue: e.count(tb, "queue"), dedup: e.count(tb, "dedup")}
}

// decode reads a JSON answer into a map, checking its content type.
func decode(tb testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	tb.Helper()
	require.Equal(tb, "application/json", rec.Header().Get("Content-Type"), "body: %s", rec.Body.String())
	var out map[string]any
	require.NoError(tb, json.Unmarshal(rec.Body.Bytes(), &out), "body: %s", rec.Body.String())
	return out
}

// apiErr checks a JSON error answer and returns its code.
func apiErr(tb testing.TB, rec *httptest.ResponseRecorder, status int) string {
	tb.Helper()
	require.Equal(tb, status, rec.Code, "body: %s", rec.Body.String())
	var out struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.Equal(tb, "application/json", rec.Header().Get("Content-Type"))
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(tb, dec.Decode(&out), "body: %s", rec.Body.String())
	require.NotEmpty(tb, out.Error.Code, "body: %s", rec.Body.String())
	require.NotEmpty(tb, out.Error.Message, "body: %s", rec.Body.String())
	return out.Error.Code
}

// payload is the stored payload of a webhook event.
type payload struct {
	Body    any               `json:"body"`
	Headers map[string]string `json:"headers"`
	Query   map[string]string `json:"query"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
}

// storedEvent reads the event an accepted answer names.
func (e *env) storedEvent(tb testing.TB, rec *httptest.ResponseRecorder) (*store.Event, payload) {
	tb.Helper()
	require.Equal(tb, http.StatusAccepted, rec.Code, "body: %s", rec.Body.String())
	out := decode(tb, rec)
	require.Equal(tb, "accepted", out["status"])
	id, _ := out["event_id"].(string)
	require.NotEmpty(tb, id)
	ev, err := e.st.GetEvent(context.Background(), id)
	require.NoError(tb, err)
	var p payload
	d := json.NewDecoder(bytes.NewReader(ev.Payload))
	d.UseNumber()
	require.NoError(tb, d.Decode(&p))
	return ev, p
}

// counterValue reads a counter, as prometheus/testutil.ToFloat64 does
// (testutil needs a module that go.mod does not list).
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	require.NoError(tb, c.Write(&m))
	return m.GetCounter().GetValue()
}

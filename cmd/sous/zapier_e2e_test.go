package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// zapierSink stands in for Zapier: it records what it accepts, by item
// id, and answers status (503 while it is down).
type zapierSink struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	items  map[string]map[string]any // by the body's id
	heads  map[string]string         // X-Sous-Delivery by the body's id
	posts  atomic.Int32              // every POST, accepted or not
	// downUntil, when set, makes it answer 503 until then
	downUntil atomic.Pointer[time.Time]
}

// zapierDownFor is how long the failing subscriber answers 503 (the issue
// says a minute; the mechanism is the same for any period).
const zapierDownFor = 10 * time.Second

func newZapierSink(t *testing.T, status int) *zapierSink {
	s := &zapierSink{items: map[string]map[string]any{}, heads: map[string]string{}}
	s.status.Store(int32(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.posts.Add(1)
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		code := int(s.status.Load())
		if until := s.downUntil.Load(); until != nil {
			code = http.StatusOK
			if time.Now().Before(*until) {
				code = http.StatusServiceUnavailable
			}
		}
		if code == http.StatusOK {
			id, _ := body["id"].(string)
			s.mu.Lock()
			s.items[id] = body
			s.heads[id] = r.Header.Get("X-Sous-Delivery")
			s.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *zapierSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// zapierServe is a `sous serve` the test can kill and start again.
type zapierServe struct {
	bin, tmp, config, base string
	env                    []string
	c                      *child
	n                      int
}

const zapierKey = "e2e-zapier-key-0123456789abcdef"

func (z *zapierServe) start(t *testing.T) {
	t.Helper()
	z.n++
	z.c = startChild(t, z.bin, filepath.Join(z.tmp, fmt.Sprintf("serve%d.log", z.n)), z.env, "serve", "--config", z.config)
	waitReady(t, z.base, z.c)
}

func (z *zapierServe) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, z.base+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", zapierKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

const zapierOrderRecipe = `version: 1
name: new-order
trigger:
  type: zapier.action
  with:
    name: create-order
    inputs:
      - {key: email, type: string, required: true}
      - {key: quantity, type: integer}
steps:
  - id: notify
    action: zapier.notify
    with:
      event: order_created
      data: {email: "{{ event.input.email }}", quantity: "{{ event.input.quantity }}"}
`

// TestZapierE2E: through a real `sous serve`, Zapier starts a recipe
// (POST /api/v1/zapier/actions/create-order: 400 naming a bad field, wait
// answering the outputs, the run in `sous runs list` and its input in
// `runs show`), and the recipe's zapier.notify delivers to two subscribers:
// a healthy one gets every item at once while the other answers 503; the
// process is killed with -9 with deliveries still owed and started again;
// the failing one recovers and gets every item, none lost, each with a
// stable delivery id.
func TestZapierE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	healthy, failing := newZapierSink(t, http.StatusOK), newZapierSink(t, http.StatusOK)
	tmp := t.TempDir()
	recipesDir := filepath.Join(tmp, "recipes")
	writeFile(t, recipesDir, "order.yaml", zapierOrderRecipe)
	addr := freeAddr(t)
	z := &zapierServe{bin: buildSous(t), tmp: tmp, base: "http://" + addr,
		env: []string{"SOUS_ZAPIER_BACKOFF=200ms", "SOUS_ZAPIER_MAX_BACKOFF=1s", "SOUS_ZAPIER_POLL=50ms"}}
	z.config = writeFile(t, tmp, "sous.yaml", fmt.Sprintf("listen: %s\ndata_dir: %s\nrecipes: %s\napi_keys: [%s]\n",
		addr, filepath.Join(tmp, "data"), recipesDir, zapierKey))
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= z.n; i++ {
				b, _ := os.ReadFile(filepath.Join(tmp, fmt.Sprintf("serve%d.log", i)))
				t.Logf("serve log %d:\n%s", i, b)
			}
		}
	})
	z.start(t)
	downUntil := time.Now().Add(zapierDownFor)
	failing.downUntil.Store(&downUntil)

	for _, s := range []*zapierSink{healthy, failing} {
		code, out := z.call(t, http.MethodPost, "/api/v1/zapier/hooks", `{"hookUrl":"`+s.srv.URL+`/hooks/catch/1/x","event":"order_created"}`)
		require.Equal(t, http.StatusCreated, code, "%v", out)
	}
	code, out := z.call(t, http.MethodPost, "/api/v1/zapier/actions/create-order", `{"email":"a@b.test","quantity":"many"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "quantity", out["error"].(map[string]any)["field"])

	code, out = z.call(t, http.MethodPost, "/api/v1/zapier/actions/create-order?wait=20", `{"email":"first@b.test","quantity":"1"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "succeeded", out["status"])
	notify := out["outputs"].(map[string]any)["notify"].(map[string]any)
	require.EqualValues(t, 2, notify["subscribers"])
	firstRun := out["id"].(string)

	const before, after = 15, 10
	for i := range before {
		code, out := z.call(t, http.MethodPost, "/api/v1/zapier/actions/create-order", fmt.Sprintf(`{"email":"u%d@b.test","quantity":%d}`, i, i))
		require.Equal(t, http.StatusAccepted, code, "%v", out)
	}
	require.Eventually(t, func() bool { return healthy.count() == 1+before }, 20*time.Second, 20*time.Millisecond,
		"the healthy subscriber gets every item while the other answers 503")
	require.Zero(t, failing.count())
	require.True(t, time.Now().Before(downUntil), "all this while the other was down: the test is not meaningful on a machine this slow")
	require.Eventually(t, func() bool { return failing.posts.Load() > int32(1+before) }, 10*time.Second, 10*time.Millisecond,
		"the failing one is being retried")

	// kill -9 with every delivery to the failing subscriber owed
	require.NoError(t, z.c.cmd.Process.Kill())
	<-z.c.done
	z.start(t)
	for i := range after {
		code, _ := z.call(t, http.MethodPost, "/api/v1/zapier/actions/create-order", fmt.Sprintf(`{"email":"v%d@b.test"}`, i))
		require.Equal(t, http.StatusAccepted, code)
	}
	require.Eventually(t, func() bool { return healthy.count() == 1+before+after }, 20*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return failing.count() == 1+before+after }, 30*time.Second, 20*time.Millisecond,
		"the failing subscriber gets every item once it recovers, those owed across the kill included")
	require.False(t, time.Now().Before(downUntil))
	healthy.mu.Lock()
	for id, body := range healthy.items {
		require.Equal(t, body, failing.items[id], "the same item for both")
		require.NotEqual(t, healthy.heads[id], failing.heads[id], "a delivery id per subscriber")
		require.True(t, strings.HasPrefix(failing.heads[id], "zd_"))
	}
	healthy.mu.Unlock()

	// the runs, with their input, and their deliveries
	res := sous(t, "", "runs", "list", "--config", z.config, "--limit", "100")
	require.Equal(t, 0, res.code, res.String())
	require.Equal(t, 1+before+after, strings.Count(res.stdout, "new-order"), res.stdout)
	require.Regexp(t, firstRun+` +new-order +\S+ +\S+ \S+ +\S+ +\{.*"first@b\.test"`, res.stdout, "the run's input is listed")
	res = sous(t, "", "runs", "show", firstRun, "--config", z.config)
	require.Equal(t, 0, res.code, res.String())
	require.Regexp(t, `(?m)^input +\{.*"first@b\.test"`, res.stdout, "the run's input is shown")
	code, out = z.call(t, http.MethodGet, "/api/v1/runs/"+firstRun, "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "first@b.test", out["input"].(map[string]any)["input"].(map[string]any)["email"], "the API shows the input: the event, {action, input, meta}")
	require.Contains(t, res.stdout, "zd_", "the step's output lists the deliveries")
	res = sous(t, "", "zapier", "deliveries", "--run", firstRun, "--config", z.config, "--json")
	require.Equal(t, 0, res.code, res.String())
	var ds []map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &ds))
	require.Len(t, ds, 2)
	for _, d := range ds {
		require.Equal(t, "delivered", d["status"])
	}
	res = sous(t, "", "zapier", "hooks", "list", "--config", z.config)
	require.Equal(t, 0, res.code, res.String())
	require.Equal(t, 3, strings.Count(res.stdout, "\n"), res.stdout)
	require.Contains(t, res.stdout, "order_created")
	require.NotContains(t, res.stdout, "/hooks/catch/1/x", "the Zap's secret URL is not shown")

	// the healthy one deleted from the CLI gets nothing more
	var hooks []map[string]any
	res = sous(t, "", "zapier", "hooks", "list", "--config", z.config, "--json")
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &hooks))
	res = sous(t, "", "zapier", "hooks", "delete", hooks[0]["id"].(string), "--config", z.config)
	require.Equal(t, 0, res.code, res.String())
	require.Equal(t, 1, sous(t, "", "zapier", "hooks", "delete", "zh_nope", "--config", z.config).code)
}

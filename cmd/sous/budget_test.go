package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// boomRecipe is issue 19's reproduction: one webhook whose var allocated
// gigabytes took `sous serve` down, and again at every restart.
const boomRecipe = `version: 1
name: boom
trigger: {type: webhook.received, with: {path: /boom}}
vars:
  size: '{{ event.body.n > 0 ? len(repeat(repeat("a", 999999), int(event.body.n))) : 0 }}'
steps:
  - id: call
    action: http.request
    with: {url: "%[1]s/boom", json: {size: "{{ vars.size }}"}}
`

// slowRecipe is the loop that ran 21 s: each call of its step
// builds a string quadratically.
const slowRecipe = `version: 1
name: slow
trigger: {type: webhook.received, with: {path: /slow}}
steps:
  - id: call
    action: http.request
    with: {url: "%[1]s/slow", json: {s: '{{ len(reduce(1..int(event.body.n), #acc + "xxxxxxxxxx", "")) }}'}}
`

// fineRecipe is another recipe of the same server, which must go on.
const fineRecipe = `version: 1
name: fine
trigger: {type: webhook.received, with: {path: /fine}}
steps:
  - id: call
    action: http.request
    with: {url: "%[1]s/fine", json: {id: "{{ event.body.id }}"}}
`

// TestExpressionBudgetThroughServe: the webhooks of issue 19 that crashed
// `sous serve` (and that took 21 s of a core) are accepted, their runs fail
// with the reason expression_budget, nothing of them is called, and the
// server goes on serving another recipe.
func TestExpressionBudgetThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts sous serve")
	}
	tmp := t.TempDir()
	bin := buildSous(t)
	var calls atomic.Int64
	var fine atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/fine" {
			fine.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer sink.Close()
	dir := filepath.Join(tmp, "recipes")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, src := range map[string]string{"boom.yaml": boomRecipe, "slow.yaml": slowRecipe, "fine.yaml": fineRecipe} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf(src, sink.URL)), 0o644))
	}
	const key = "budget-test-key-4f0c2a9e"
	config := filepath.Join(tmp, "sous.yaml")
	require.NoError(t, os.WriteFile(config, []byte("log_level: warn\napi_keys: [\""+key+"\"]\n"), 0o644))
	addr := freeAddr(t)
	base := "http://" + addr
	c := startChild(t, bin, filepath.Join(tmp, "serve.log"), nil,
		"serve", "--config", config, "--recipes", dir, "--data", filepath.Join(tmp, "data"), "--listen", addr)
	defer func() {
		if t.Failed() {
			t.Logf("sous serve log:\n%s", c.output())
		}
	}()
	waitReady(t, base, c)

	post := func(path, body string) {
		t.Helper()
		resp, err := http.Post(base+"/hooks"+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, path)
	}
	post("/boom", `{"n": 999999}`)
	post("/boom", `{"n": 2000}`)
	post("/slow", `{"n": 100000}`)
	post("/fine", `{"id": "after"}`)

	// every run ends, and the process is alive to tell
	type run struct {
		Recipe, Status, Reason, Error string
	}
	var runs []run
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/runs", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			select {
			case err := <-c.done:
				t.Fatalf("sous serve exited: %v", err)
			default:
			}
			return false
		}
		defer resp.Body.Close()
		var out struct{ Runs []run }
		if json.NewDecoder(resp.Body).Decode(&out) != nil {
			return false
		}
		runs = out.Runs
		return len(runs) == 4
	}, 60*time.Second, 50*time.Millisecond)
	byRecipe := map[string][]run{}
	for _, r := range runs {
		byRecipe[r.Recipe] = append(byRecipe[r.Recipe], r)
	}
	for _, name := range []string{"boom", "slow"} {
		for _, r := range byRecipe[name] {
			require.Equal(t, "failed", r.Status, "%+v", r)
			require.Equal(t, "expression_budget", r.Reason, "%+v", r)
		}
	}
	require.Len(t, byRecipe["boom"], 2)
	require.Contains(t, byRecipe["boom"][0].Error, "vars.size")
	require.Contains(t, byRecipe["boom"][0].Error, "over the 32.0 MiB an expression may make")
	require.Equal(t, "succeeded", byRecipe["fine"][0].Status)
	require.Equal(t, int64(1), calls.Load(), "only the fine recipe's step is called")
	require.Equal(t, int64(1), fine.Load())
}

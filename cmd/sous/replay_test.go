package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// On the memory broker the queue is in the memory of the running sous
// serve: `runs replay` sends the replay to it through the REST API, and
// the replay runs; with no server answering, it fails and says why.
func TestRunsReplayMemoryBroker(t *testing.T) {
	var hits atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(sink.Close)
	dir := t.TempDir()
	recipesDir := filepath.Join(dir, "recipes")
	writeFile(t, recipesDir, "ping.yaml", `version: 1
name: ping
trigger:
  type: webhook.received
  with: {path: /ping}
steps:
  - id: call
    action: http.request
    with: {url: "`+sink.URL+`/hit"}
    retry: {max_attempts: 1}
`)
	dataDir := filepath.Join(dir, "data")
	const key = "replay-test-key-0123456789"
	cfgText := func(listen, keys string) string {
		return "listen: " + listen + "\ndata_dir: " + dataDir + "\nrecipes: " + recipesDir + "\napi_keys: " + keys + "\nbroker: {type: memory}\n"
	}
	// the service, on a port of its own; the CLI's config names it
	cfg, diags := recipes.ParseConfig(filepath.Join(dir, "serve.yaml"), []byte(cfgText("127.0.0.1:0", "["+key+"]")), func(string) (string, bool) { return "", false }, nil)
	require.False(t, diags.HasErrors(), "%v", diags)
	settings, err := service.ParseSettings(cfg)
	require.NoError(t, err)
	svc, err := service.Open(context.Background(), service.Options{
		Config: cfg, RecipesDir: recipesDir, Listen: cfg.Listen, DataDir: dataDir, Settings: settings,
		Logger: slog.New(slog.DiscardHandler), Registry: connector.Default,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	base := "http://" + svc.Addr()
	cliConfig := writeFile(t, dir, "sous.yaml", cfgText(svc.Addr(), "["+key+"]"))
	noKeys := writeFile(t, dir, "nokeys.yaml", cfgText(svc.Addr(), "[]"))

	succeeded := func(n int) func() bool {
		return func() bool {
			runs, err := svc.Store.ListRuns(context.Background(), store.RunFilter{Status: "succeeded", Limit: 10})
			return err == nil && len(runs) == n
		}
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)
	resp, err := http.Post(base+"/hooks/ping", "application/json", strings.NewReader(`{"n":1}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, succeeded(1), 10*time.Second, 10*time.Millisecond)
	runs, err := svc.Store.ListRuns(context.Background(), store.RunFilter{Limit: 10})
	require.NoError(t, err)
	first := runs[0].ID

	t.Run("without an API key", func(t *testing.T) {
		r := sous(t, "", "runs", "replay", "--config", noKeys, first)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "a replay on the memory broker needs the running sous serve", "%s", r)
		require.Contains(t, r.stderr, "with a key from api_keys, and "+noKeys+" has none", "%s", r)
	})
	t.Run("an unknown run", func(t *testing.T) {
		r := sous(t, "", "runs", "replay", "--config", cliConfig, "run_nope")
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "run run_nope: the server at "+base+" did not queue a replay:", "%s", r)
	})
	t.Run("through the running server", func(t *testing.T) {
		r := sous(t, "", "runs", "replay", "--config", cliConfig, first)
		require.Equal(t, 0, r.code, "%s", r)
		require.Regexp(t, regexp.MustCompile(`^queued run_\S+ \(a replay of `+first+`\) on the server at `+regexp.QuoteMeta(base)+`\n$`), r.stdout)
		require.Eventually(t, succeeded(2), 10*time.Second, 10*time.Millisecond, "the replay runs")
		require.Equal(t, int32(2), hits.Load())
		require.NotContains(t, r.stdout+r.stderr, key, "the API key is not printed")
	})
	t.Run("no server answering", func(t *testing.T) {
		stop()
		r := sous(t, "", "runs", "replay", "--config", cliConfig, first)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stderr, "a replay on the memory broker needs the running sous serve (its queue is in that process's memory)", "%s", r)
		require.Contains(t, r.stderr, "none answers at "+base, "%s", r)
		require.NotContains(t, r.stdout, "queued", "%s", r)
	})
}

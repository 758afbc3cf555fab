package main

import (
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/sous-run/sous/engine/broker/nats/natstest"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
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

// On every broker `runs replay` runs a failed run again in a running sous
// serve: on sqlite the CLI queues it in the store of the data dir, on
// postgres and nats it asks the server through the REST API, which queues
// it on its broker. The remote fails its first call and answers the next,
// so the replay succeeds where the run failed, on the same event.
func TestRunsReplayEachBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	bin := buildSous(t)
	tests := []struct {
		name string
		// broker gives the config's broker line
		broker func(t *testing.T) string
		// server: the CLI sends the replay to the running sous serve
		server bool
	}{
		{
			name:   "sqlite",
			broker: func(*testing.T) string { return "broker: {type: sqlite}\n" },
		},
		{
			name: "postgres",
			broker: func(t *testing.T) string {
				return fmt.Sprintf("broker: {type: postgres, url: %q}\n", storetest.Postgres(t))
			},
			server: true,
		},
		{
			name: "nats",
			broker: func(t *testing.T) string {
				url, prefix := natstest.NATS(t)
				return fmt.Sprintf("broker: {type: nats, url: %q, prefix: %s}\n", url, prefix)
			},
			server: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if hits.Add(1) == 1 {
					http.Error(w, "down for a moment", http.StatusInternalServerError)
					return
				}
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
			const key = "replay-test-key-0123456789"
			addr := freeAddr(t)
			base := "http://" + addr
			broker := tt.broker(t)
			cfgText := func(keys string) string {
				return "log_level: warn\nlisten: " + addr + "\ndata_dir: " + filepath.Join(dir, "data") +
					"\nrecipes: " + recipesDir + "\napi_keys: " + keys + "\n" + broker
			}
			config := writeFile(t, dir, "sous.yaml", cfgText("["+key+"]"))
			c := startChild(t, bin, filepath.Join(dir, "serve.log"), nil, "serve", "--config", config)
			defer func() {
				if t.Failed() {
					t.Logf("--- sous serve log:\n%s", c.output())
				}
			}()
			waitReady(t, base, c)

			type run struct {
				ID      string `json:"id"`
				EventID string `json:"event_id"`
				Recipe  string `json:"recipe"`
				Status  string `json:"status"`
			}
			// get reads an endpoint of the REST API into v
			get := func(path string, v any) error {
				req, err := http.NewRequest(http.MethodGet, base+"/api/v1"+path, nil)
				if err != nil {
					return err
				}
				req.Header.Set("X-API-Key", key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("GET %s: %s", path, resp.Status)
				}
				return json.NewDecoder(resp.Body).Decode(v)
			}
			var list struct {
				Runs []run `json:"runs"`
			}
			resp, err := http.Post(base+"/hooks/ping", "application/json", strings.NewReader(`{"n":1}`))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			require.Eventually(t, func() bool {
				list.Runs = nil
				return get("/runs?status=failed", &list) == nil && len(list.Runs) == 1
			}, 20*time.Second, 20*time.Millisecond, "the run fails")
			first := list.Runs[0]
			require.Equal(t, int32(1), hits.Load())

			r := sous(t, "", "runs", "replay", "--config", config, first.ID)
			require.Equal(t, 0, r.code, "%s", r)
			through := ""
			if tt.server {
				through = " on the server at " + base
			}
			m := regexp.MustCompile(`^queued (run_\S+) \(a replay of ` + first.ID + `\)` + regexp.QuoteMeta(through) + `\n$`).FindStringSubmatch(r.stdout)
			require.NotNil(t, m, "%s", r)
			var replayed run
			require.Eventually(t, func() bool {
				replayed = run{}
				return get("/runs/"+m[1], &replayed) == nil && replayed.Status == "succeeded"
			}, 20*time.Second, 20*time.Millisecond, "the replay runs and succeeds")
			require.Equal(t, int32(2), hits.Load(), "the replay called the remote again")
			require.Equal(t, run{ID: m[1], EventID: first.EventID, Recipe: "ping", Status: "succeeded"}, replayed, "the replay ran the same event")
			list.Runs = nil
			require.NoError(t, get("/runs", &list))
			require.Len(t, list.Runs, 2, "the failed run and its replay")
			require.NotContains(t, r.stdout+r.stderr, key, "the API key is not printed")
			if !tt.server {
				return
			}

			why := "a replay on the " + tt.name + " broker needs the running sous serve (it queues the replay on the broker), reached through its REST API"
			noKeys := writeFile(t, dir, "nokeys.yaml", cfgText("[]"))
			r = sous(t, "", "runs", "replay", "--config", noKeys, first.ID)
			require.Equal(t, 1, r.code, "%s", r)
			require.Contains(t, r.stderr, why+" with a key from api_keys, and "+noKeys+" has none", "%s", r)
			require.NoError(t, c.cmd.Process.Kill())
			<-c.done
			r = sous(t, "", "runs", "replay", "--config", config, first.ID)
			require.Equal(t, 1, r.code, "%s", r)
			require.Contains(t, r.stderr, why+", and none answers at "+base, "%s", r)
			require.NotContains(t, r.stdout, "queued", "%s", r)
		})
	}
}

// runs list, runs show and stats read the embedded store: on the brokers
// that keep their runs elsewhere they refuse, naming the REST endpoints
// that answer instead.
func TestRunsReadsRefuseOffTheEmbeddedStore(t *testing.T) {
	dir := t.TempDir()
	for _, broker := range []struct{ name, config, where string }{
		{"postgres", `{type: postgres, url: "postgres://127.0.0.1:1/none"}`, "in PostgreSQL"},
		{"nats", `{type: nats, url: "nats://127.0.0.1:1"}`, "in the store of whichever sous serve ran them"},
	} {
		config := writeFile(t, dir, broker.name+".yaml", "data_dir: "+filepath.Join(dir, "data")+"\nbroker: "+broker.config+"\n")
		for _, args := range [][]string{{"runs", "list"}, {"runs", "show", "run_x"}, {"stats"}} {
			t.Run(broker.name+" "+strings.Join(args, " "), func(t *testing.T) {
				r := sous(t, "", append(args, "--config", config)...)
				require.Equal(t, 1, r.code, "%s", r)
				for _, want := range []string{
					"GET /api/v1/runs?recipe=&status=&since=&until=&limit= (runs list)",
					"GET /api/v1/runs/RUN_ID (runs show)",
					"GET /api/v1/stats?recipe=&since=24h (stats)",
					"the " + broker.name + " broker keeps its runs " + broker.where,
				} {
					require.Contains(t, r.stderr, want, "%s", r)
				}
			})
		}
	}
}

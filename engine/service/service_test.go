package service

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
)

// hookRecipe is a webhook recipe on path whose one step posts the body's
// id to the sink at sinkPath.
func hookRecipe(name, path, sinkURL, sinkPath string) string {
	return fmt.Sprintf(`version: 1
name: %s
trigger: {type: webhook.received, with: {path: %s, id: event.body.id}}
steps:
  - id: call
    action: http.request
    with: {url: "%s%s", json: {id: "{{ event.body.id }}"}}
`, name, path, sinkURL, sinkPath)
}

// TestServeEndToEnd: a webhook is stored, answered 202, run, and recorded
// as succeeded; a duplicate delivery is answered 200 and makes no run;
// cancelling Run shuts down gracefully, finishing the run in flight.
func TestServeEndToEnd(t *testing.T) {
	fast := newSink(t, 0)
	slow := newSink(t, 500*time.Millisecond)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "orders.yaml", hookRecipe("orders", "/orders", fast.srv.URL, "/orders"))
	writeRecipe(t, recipesDir, "slow.yaml", hookRecipe("slow", "/slow", slow.srv.URL, "/slow"))
	r := start(t, dataDir, recipesDir)
	st := r.svc.Store

	require.Equal(t, http.StatusAccepted, r.post(t, "/orders", map[string]any{"id": "o-1"}))
	require.Eventually(t, func() bool { return len(runsOf(t, st, "orders")) == 1 }, 10*time.Second, 10*time.Millisecond)
	run := runsOf(t, st, "orders")[0]
	require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
	ev, err := st.GetEvent(context.Background(), run.EventID)
	require.NoError(t, err)
	require.Equal(t, "/orders", ev.Source)
	calls := fast.snapshot()
	require.Len(t, calls, 1)
	require.Equal(t, "o-1", calls[0].Body["id"])
	require.Equal(t, run.ID+":call", calls[0].Key, "the idempotency key is the run id and the step")

	// the same delivery again: a duplicate, no second run
	require.Equal(t, http.StatusOK, r.post(t, "/orders", map[string]any{"id": "o-1"}))
	require.Equal(t, http.StatusNotFound, r.post(t, "/nowhere", map[string]any{"id": "x"}))

	// a run in flight when the service is told to stop
	require.Equal(t, http.StatusAccepted, r.post(t, "/slow", map[string]any{"id": "s-1"}))
	require.Eventually(t, func() bool { return len(slow.snapshot()) == 1 }, 10*time.Second, 5*time.Millisecond,
		"the slow step did not start")
	began := time.Now()
	require.NoError(t, r.stop(t), "a graceful shutdown returns nil")
	require.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond, "the shutdown waited for the run in flight")
	calls = slow.snapshot()
	require.Len(t, calls, 1, "the step in flight was not called again")
	require.True(t, calls[0].Done)
	require.Len(t, runsOf(t, openStore(t, dataDir), "orders"), 1, "the duplicate made no run")

	// the run was recorded before the store closed: look in a new process
	reopened := openStore(t, dataDir)
	runs := runsOf(t, reopened, "slow")
	require.Len(t, runs, 1)
	require.Equal(t, "succeeded", runs[0].Status, "the run in flight completed during the shutdown: %s %s", runs[0].Reason, runs[0].Error)
	cp, err := reopened.Checkpoint(context.Background(), runs[0].ID)
	require.NoError(t, err)
	require.Nil(t, cp)

	// nothing is left to do: a new service on the same data runs nothing again
	r2 := start(t, dataDir, recipesDir)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, r2.stop(t))
	require.Len(t, slow.snapshot(), 1)
	require.Len(t, fast.snapshot(), 1)
}

// TestOpenErrors: a missing recipes folder, a taken address and a short
// secret fail Open and leave nothing open.
func TestOpenErrors(t *testing.T) {
	_, err := Open(context.Background(), Options{RecipesDir: t.TempDir() + "/missing", Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: testSettings()})
	require.ErrorContains(t, err, "recipes")

	r := start(t, t.TempDir(), t.TempDir())
	dataDir := t.TempDir()
	_, err = Open(context.Background(), Options{RecipesDir: t.TempDir(), Listen: r.svc.Addr(), DataDir: dataDir, Settings: testSettings()})
	require.ErrorContains(t, err, "listen")
	// the store of the failed Open was closed: the data dir opens again
	st := openStore(t, dataDir)
	_, err = st.ListRuns(context.Background(), store.RunFilter{})
	require.NoError(t, err)

	_, err = Open(context.Background(), Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: Settings{Broker: BrokerSettings{Type: "kafka"}}})
	require.ErrorContains(t, err, "not available")

	// a secret too short to be redacted is refused, named but not shown
	_, err = Open(context.Background(), Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: testSettings(),
		Secrets: map[string]string{"LONG": "long-enough", "PIN": "q7z", "EMPTY": ""}})
	require.EqualError(t, err, "secret secrets.PIN is shorter than 4 characters: so short a secret cannot be redacted from run records and logs; use a longer one")
}

// TestZeroSettingsUseDefaults: a caller that leaves Settings (or some of
// them) unset gets the defaults, not a panic or a zero timeout.
func TestZeroSettingsUseDefaults(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "orders.yaml", hookRecipe("orders", "/orders", sk.srv.URL, "/orders"))
	svc, err := Open(context.Background(), Options{RecipesDir: recipesDir, Listen: "127.0.0.1:0", DataDir: dataDir,
		Settings: Settings{Pipeline: PipelineSettings{ReloadInterval: 50 * time.Millisecond}}})
	require.NoError(t, err)
	require.Equal(t, DefaultSettings().Retention, svc.opts.Settings.Retention)
	require.Equal(t, DefaultSettings().Limits, svc.opts.Settings.Limits)
	require.Equal(t, 50*time.Millisecond, svc.opts.Settings.Pipeline.ReloadInterval, "what is set is kept")
	require.Equal(t, DefaultSettings().Pipeline.ShutdownTimeout, svc.opts.Settings.Pipeline.ShutdownTimeout)
	require.Equal(t, runner.DefaultMaxRetryAfter, svc.opts.Settings.Pipeline.MaxRetryAfter)
	require.Equal(t, runner.DefaultMaxRetryAfter, svc.newRunner().MaxRetryAfter)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	require.Eventually(t, func() bool {
		resp, err := http.Post("http://"+svc.Addr()+"/hooks/orders", "application/json", strings.NewReader(`{"id":"z"}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return len(sk.snapshot()) == 1 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

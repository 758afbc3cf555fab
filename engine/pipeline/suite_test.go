package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/memory"
	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// opened is one "process" worth of store and broker over a backing that
// outlives it, so that a test can stop it and open it again.
type opened struct {
	st    *store.Store
	b     broker.Broker
	close func()
}

// brokerCase describes a broker for the shared suite.
type brokerCase struct {
	name string
	// durable: messages in flight survive a restart of the process.
	durable bool
	// backing sets up what outlives a process (a directory, a database)
	// and returns how to open it.
	backing func(t *testing.T) func(t *testing.T) opened
}

func sqliteCase() brokerCase {
	return brokerCase{name: "sqlite", durable: true, backing: func(t *testing.T) func(t *testing.T) opened {
		dir := t.TempDir()
		return func(t *testing.T) opened {
			ctx := context.Background()
			write, read, err := store.OpenSQLite(ctx, dir)
			require.NoError(t, err)
			st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
			require.NoError(t, st.Migrate(ctx))
			// few in flight, so that a restart finds work left in a load
			b, err := sqlite.New(ctx, st, sqlqueue.Config{Poll: 20 * time.Millisecond, MaxInFlight: 16})
			require.NoError(t, err)
			require.NoError(t, b.Queue.ReleaseLeases(ctx))
			return opened{st: st, b: b, close: func() { b.Close(); read.Close(); write.Close() }}
		}
	}}
}

func memoryCase() brokerCase {
	return brokerCase{name: "memory", backing: func(t *testing.T) func(t *testing.T) opened {
		dir := t.TempDir()
		return func(t *testing.T) opened {
			ctx := context.Background()
			write, read, err := store.OpenSQLite(ctx, dir)
			require.NoError(t, err)
			st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
			require.NoError(t, st.Migrate(ctx))
			b := memory.New(st)
			return opened{st: st, b: b, close: func() { b.Close(); read.Close(); write.Close() }}
		}
	}}
}

// suiteBrokers lists the brokers the suite runs on. The PostgreSQL and
// NATS cases live beside their brokers' own tests.
func suiteBrokers() []brokerCase {
	return append([]brokerCase{sqliteCase(), memoryCase()}, extraSuiteBrokers...)
}

// extraSuiteBrokers is filled by the files of brokers that need a service.
var extraSuiteBrokers []brokerCase

// engineRun is an engine the test stops itself.
type engineRun struct {
	eng  *pipeline.Engine
	done chan error
}

func runEngine(t *testing.T, o opened, ix *pipeline.Index, owner string) *engineRun {
	t.Helper()
	return runEngineWith(t, o, ix, 30*time.Second, nil)
}

// runEngineWith runs an engine over o with a run timeout and runners that
// hold secrets.
func runEngineWith(t *testing.T, o opened, ix *pipeline.Index, runTimeout time.Duration, secrets map[string]string) *engineRun {
	t.Helper()
	eng, err := pipeline.New(pipeline.Config{Store: o.st, Broker: o.b, RunTimeout: runTimeout, Logger: testLogger(t),
		MaxInlineDelay: 500 * time.Millisecond,
		NewRunner:      func() *runner.Runner { return &runner.Runner{Secrets: secrets} }})
	require.NoError(t, err)
	eng.SetIndex(ix)
	er := &engineRun{eng: eng, done: make(chan error, 1)}
	go func() { er.done <- eng.Run(context.Background()) }()
	select {
	case <-eng.Running():
	case err := <-er.done:
		t.Fatalf("engine stopped at start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("engine did not start")
	}
	return er
}

func (er *engineRun) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, er.eng.Close())
	require.NoError(t, <-er.done)
}

func TestBrokerSuite(t *testing.T) {
	for _, bc := range suiteBrokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Run("every event runs once", func(t *testing.T) {
				o := bc.backing(t)(t)
				defer o.close()
				sink := newBrokerSink(t, 0)
				er := runEngine(t, o, brokerIndex(t, sink.srv.URL), "one")
				defer er.stop(t)
				load := newBrokerLoad(200)
				load.accept(t, o.b.Accept)
				load.wait(t, sink, o.st)
			})
			t.Run("a restart in the middle of a load", func(t *testing.T) {
				if !bc.durable {
					t.Skip("messages in flight do not survive a restart of this broker")
				}
				open := bc.backing(t)
				sink := newBrokerSink(t, 2*time.Millisecond)
				ix := brokerIndex(t, sink.srv.URL)
				load := newBrokerLoad(300)

				first := open(t)
				er := runEngine(t, first, ix, "first")
				load.accept(t, first.b.Accept)
				require.Eventually(t, func() bool { return len(sink.counts()) >= 40 }, 30*time.Second, 5*time.Millisecond)
				er.stop(t) // drains what is in flight
				first.close()
				require.Less(t, len(sink.counts()), load.distinct(), "the restart came too late to test anything")

				second := open(t)
				defer second.close()
				defer func() {
					if t.Failed() {
						runs, _ := second.st.ListRuns(context.Background(), store.RunFilter{Limit: 1000})
						for _, r := range runs {
							if r.Status != "succeeded" {
								t.Logf("run %s %s %s %s", r.ID, r.Status, r.Reason, r.Error)
							}
						}
					}
				}()
				er2 := runEngine(t, second, ix, "second")
				defer er2.stop(t)
				load.wait(t, sink, second.st)
			})
			t.Run("filtered events are recorded", func(t *testing.T) {
				o := bc.backing(t)(t)
				defer o.close()
				rec := parseRecipe(t, `version: 1
name: filtered
trigger: {type: webhook.received, with: {path: /f}}
filter: event.body.n > 10
steps:
  - id: call
    action: http.request
    with: {url: "http://127.0.0.1:1/never"}
`)
				ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
				require.Empty(t, errs)
				er := runEngine(t, o, ix, "one")
				defer er.stop(t)
				ev := webhookEvent(t, "/f", map[string]any{"n": 3})
				fresh, err := o.b.Accept(context.Background(), ev)
				require.NoError(t, err)
				require.True(t, fresh)
				run := waitRun(t, o.st, pipeline.RunID(ev.ID, "filtered"))
				require.Equal(t, "filtered", run.Status)
			})
		})
	}
}

// twoStepIndex holds recipe "retried" on path: step first POSTs to
// firstURL, then step second to secondURL with first's status.
func twoStepIndex(t *testing.T, path, firstURL, secondURL string) *pipeline.Index {
	t.Helper()
	rec := parseRecipe(t, fmt.Sprintf(`version: 1
name: retried
trigger: {type: webhook.received, with: {path: %s}}
steps:
  - id: first
    action: http.request
    with: {url: "%s"}
  - id: second
    action: http.request
    with: {url: "%s", json: {status: "{{ steps.first.output.status }}"}}
`, path, firstURL, secondURL))
	ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
	require.Empty(t, errs)
	return ix
}

func parseRecipe(t *testing.T, src string) *recipes.Recipe {
	t.Helper()
	rec, diags := (&recipes.Loader{}).Parse("recipe.yaml", []byte(src))
	require.False(t, diags.HasErrors(), "%v", diags)
	return rec
}

func webhookEvent(t *testing.T, path string, body map[string]any) *store.Event {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"body": body, "method": "POST", "path": path})
	require.NoError(t, err)
	id := pipeline.NewEventID()
	return &store.Event{ID: id, Type: "webhook.received", Source: path, DedupKey: "test:" + id, ReceivedAt: time.Now().UTC(), Payload: raw}
}

func waitRun(t *testing.T, st *store.Store, id string) *store.Run {
	t.Helper()
	var run *store.Run
	require.Eventually(t, func() bool {
		r, err := st.GetRun(context.Background(), id)
		if err != nil {
			return false
		}
		run = r
		return true
	}, 30*time.Second, 10*time.Millisecond, "run %s was not recorded", id)
	return run
}

// TestDurableRetrySurvivesRestart: on every durable broker, a step
// answered 503 with Retry-After is paused, stored, and retried on time
// (not before) by the next process, which records the run with both
// attempts.
func TestDurableRetrySurvivesRestart(t *testing.T) {
	for _, bc := range suiteBrokers() {
		if !bc.durable {
			continue
		}
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			testDurableRetry(t, bc)
		})
	}
}

func testDurableRetry(t *testing.T, bc brokerCase) {
	ctx := context.Background()
	open := bc.backing(t)
	var calls atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// long enough for the first process to stop before the retry
			// is due, on a machine loaded with -race and parallel tests
			w.Header().Set("Retry-After", "4")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer sink.Close()
	ix := twoStepIndex(t, "/r", sink.URL+"/first", sink.URL+"/second")

	first := open(t)
	er := runEngine(t, first, ix, "first")
	ev := webhookEvent(t, "/r", map[string]any{})
	fresh, err := first.b.Accept(ctx, ev)
	require.NoError(t, err)
	require.True(t, fresh)
	runID := pipeline.RunID(ev.ID, "retried")
	var paused runner.State
	require.Eventually(t, func() bool {
		cp, err := first.st.Checkpoint(ctx, runID)
		return err == nil && cp != nil && json.Unmarshal(cp, &paused) == nil
	}, 10*time.Second, 10*time.Millisecond, "the pending retry was not stored")
	require.False(t, paused.RetryAt.IsZero(), "the checkpoint says when to retry")
	er.stop(t)
	first.close()
	require.Equal(t, int32(1), calls.Load(), "the first process stopped before the retry time (%s)", paused.RetryAt)

	second := open(t)
	defer second.close()
	er2 := runEngine(t, second, ix, "second")
	defer er2.stop(t)
	run := waitRun(t, second.st, runID)
	require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
	require.Equal(t, 1, run.Retries)
	var res runner.Result
	require.NoError(t, json.Unmarshal(run.Record, &res))
	require.Len(t, res.Steps, 2)
	require.Len(t, res.Steps[0].Attempts, 2)
	require.Equal(t, "server_error", res.Steps[0].Attempts[0].Reason)
	require.GreaterOrEqual(t, res.Steps[0].Attempts[1].Started.Sub(res.Steps[0].Attempts[0].Started), 4*time.Second-100*time.Millisecond,
		"the retry honoured Retry-After")
	require.False(t, res.Steps[0].Attempts[1].Started.Before(paused.RetryAt),
		"retried at %s, before its time %s", res.Steps[0].Attempts[1].Started, paused.RetryAt)
	require.Equal(t, int32(3), calls.Load(), "first twice, second once")
	cp, err := second.st.Checkpoint(ctx, runID)
	require.NoError(t, err)
	require.Nil(t, cp, "the checkpoint is dropped once the run is recorded")
	require.Eventually(t, func() bool { return second.b.Depth(ctx, broker.TopicRuns) == 0 },
		10*time.Second, 20*time.Millisecond, "nothing is left waiting")
}

// TestReplayFromFailedStep reruns only the failed step, reusing the
// outputs of the steps before it.
func TestReplayFromFailedStep(t *testing.T) {
	o := sqliteCase().backing(t)(t)
	defer o.close()
	var firstCalls, secondCalls atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/first" {
			firstCalls.Add(1)
			fmt.Fprint(w, `{"ticket":"T-1"}`)
			return
		}
		if secondCalls.Add(1) == 1 {
			http.Error(w, `{"error":"bad"}`, http.StatusUnprocessableEntity)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer sink.Close()
	rec := parseRecipe(t, fmt.Sprintf(`version: 1
name: replayed
trigger: {type: webhook.received, with: {path: /p}}
steps:
  - id: first
    action: http.request
    with: {url: "%s/first"}
  - id: second
    action: http.request
    with: {url: "%s/second", json: {ticket: "{{ steps.first.output.json.ticket }}"}}
`, sink.URL, sink.URL))
	ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
	require.Empty(t, errs)
	er := runEngine(t, o, ix, "one")
	defer er.stop(t)
	ev := webhookEvent(t, "/p", map[string]any{})
	_, err := o.b.Accept(context.Background(), ev)
	require.NoError(t, err)
	failed := waitRun(t, o.st, pipeline.RunID(ev.ID, "replayed"))
	require.Equal(t, "failed", failed.Status)
	require.Equal(t, "second", failed.ErrorStep)

	id, err := er.eng.Replay(context.Background(), failed.ID, true)
	require.NoError(t, err)
	replayed := waitRun(t, o.st, id)
	require.Equal(t, "succeeded", replayed.Status, "%s", replayed.Error)
	require.Equal(t, int32(1), firstCalls.Load(), "the step before the failed one is not called again")
	require.Equal(t, int32(2), secondCalls.Load())
	var res runner.Result
	require.NoError(t, json.Unmarshal(replayed.Record, &res))
	require.Equal(t, map[string]any{"ticket": "T-1"}, res.Steps[1].Input["json"], "the kept output feeds the replayed step")
}

// testLogger shows the engine's warnings in the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// TestFinishedRunDropsItsCheckpoint: on every broker, a two-step run
// stores a checkpoint after its first step with the secrets in the
// step's output redacted, and deletes it when it is recorded.
func TestFinishedRunDropsItsCheckpoint(t *testing.T) {
	const secret = "tok-3f9a1c7e55"
	for _, bc := range suiteBrokers() {
		t.Run(bc.name, func(t *testing.T) {
			ctx := context.Background()
			o := bc.backing(t)(t)
			defer o.close()
			release := make(chan struct{})
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/second" {
					<-release
				}
				// a service that echoes the credential it was given
				fmt.Fprintf(w, `{"echo":%q}`, r.Header.Get("Authorization"))
			}))
			defer sink.Close()
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			rec := parseRecipe(t, fmt.Sprintf(`version: 1
name: twostep
trigger: {type: webhook.received, with: {path: /two}}
steps:
  - id: first
    action: http.request
    with: {url: "%[1]s/first", headers: {Authorization: "{{ secrets.TOKEN }}"}}
  - id: second
    action: http.request
    with: {url: "%[1]s/second", json: {seen: "{{ steps.first.output.json.echo }}"}}
`, sink.URL))
			ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
			require.Empty(t, errs)
			er := runEngineWith(t, o, ix, 30*time.Second, map[string]string{"TOKEN": secret})
			defer er.stop(t)
			ev := webhookEvent(t, "/two", map[string]any{})
			fresh, err := o.b.Accept(ctx, ev)
			require.NoError(t, err)
			require.True(t, fresh)
			runID := pipeline.RunID(ev.ID, "twostep")

			var cp []byte
			require.Eventually(t, func() bool {
				cp, err = o.st.Checkpoint(ctx, runID)
				return err == nil && cp != nil
			}, 10*time.Second, 5*time.Millisecond, "no checkpoint after the first step")
			require.NotContains(t, string(cp), secret, "the checkpoint holds a secret in clear")
			var st runner.State
			require.NoError(t, json.Unmarshal(cp, &st))
			require.Equal(t, 1, st.Next)
			require.Equal(t, runner.Redacted, st.Outputs["first"]["json"].(map[string]any)["echo"])
			close(release)

			run := waitRun(t, o.st, runID)
			require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
			require.NotContains(t, string(run.Record), secret)
			cp, err = o.st.Checkpoint(ctx, runID)
			require.NoError(t, err)
			require.Nil(t, cp, "a finished run keeps its checkpoint")
		})
	}
}

// TestRunTimeoutEndsTheRun: on every broker, a run that outlasts
// pipeline.run_timeout is recorded failed with reason timeout and its
// attempt, once: it is not taken up again.
func TestRunTimeoutEndsTheRun(t *testing.T) {
	for _, bc := range suiteBrokers() {
		t.Run(bc.name, func(t *testing.T) {
			o := bc.backing(t)(t)
			defer o.close()
			var calls atomic.Int32
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				select {
				case <-time.After(4 * time.Second):
				case <-r.Context().Done():
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"ok":true}`)
			}))
			defer sink.Close()
			rec := parseRecipe(t, fmt.Sprintf(`version: 1
name: slow
trigger: {type: webhook.received, with: {path: /slow}}
steps:
  - id: call
    action: http.request
    timeout: 10s
    retry: {max_attempts: 1}
    with: {url: "%s/slow"}
`, sink.URL))
			ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
			require.Empty(t, errs)
			er := runEngineWith(t, o, ix, time.Second, nil)
			defer er.stop(t)
			ev := webhookEvent(t, "/slow", map[string]any{})
			fresh, err := o.b.Accept(context.Background(), ev)
			require.NoError(t, err)
			require.True(t, fresh)
			run := waitRun(t, o.st, pipeline.RunID(ev.ID, "slow"))
			require.Equal(t, "failed", run.Status)
			require.Equal(t, "timeout", run.Reason)
			require.Equal(t, "call", run.ErrorStep)
			require.Contains(t, run.Error, "pipeline.run_timeout (1s)")
			var res runner.Result
			require.NoError(t, json.Unmarshal(run.Record, &res))
			require.Len(t, res.Steps, 1)
			require.Len(t, res.Steps[0].Attempts, 1, "the attempt is recorded")
			require.Equal(t, int32(1), calls.Load(), "the run was taken up again")
		})
	}
}

// TestRemovedRecipeRunDropsItsCheckpoint: a run left with a checkpoint
// (its process died between two steps) whose recipe is gone when its
// message comes back is recorded dead, and its checkpoint goes with it.
func TestRemovedRecipeRunDropsItsCheckpoint(t *testing.T) {
	ctx := context.Background()
	o := sqliteCase().backing(t)(t)
	defer o.close()
	ix, errs := pipeline.BuildIndex(nil, nil)
	require.Empty(t, errs)
	er := runEngineWith(t, o, ix, 30*time.Second, nil)
	defer er.stop(t)
	ev := webhookEvent(t, "/gone", map[string]any{})
	require.NoError(t, o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return o.st.InsertEvent(ctx, tx, ev)
	}))
	runID := pipeline.RunID(ev.ID, "gone")
	state, err := json.Marshal(runner.State{Next: 1, Started: time.Now(), Outputs: map[string]map[string]any{"first": {"token": "x"}}})
	require.NoError(t, err)
	require.NoError(t, o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return o.st.SaveCheckpoint(ctx, tx, runID, state, time.Now())
	}))
	raw, err := json.Marshal(pipeline.RunMsg{RunID: runID, Recipe: "gone",
		Event: broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt}})
	require.NoError(t, err)
	require.NoError(t, o.b.Publisher().Publish(broker.TopicRuns, message.NewMessage("gone", raw)))
	run := waitRun(t, o.st, runID)
	require.Equal(t, "dead", run.Status)
	require.Equal(t, "recipe_removed", run.Reason)
	cp, err := o.st.Checkpoint(ctx, runID)
	require.NoError(t, err)
	require.Nil(t, cp, "the run's checkpoint stays")
}

// TestPoisonRunRecordedDead: a run message its queue reports held by
// processes that died MaxCrashes times is not run: it is recorded dead
// with reason poison, and its checkpoint goes; one below the limit runs.
func TestPoisonRunRecordedDead(t *testing.T) {
	ctx := context.Background()
	o := sqliteCase().backing(t)(t)
	defer o.close()
	var calls atomic.Int32
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer sink.Close()
	ix := twoStepIndex(t, "/p", sink.URL+"/first", sink.URL+"/second")
	er := runEngineWith(t, o, ix, 30*time.Second, nil)
	defer er.stop(t)
	for _, tc := range []struct {
		crashes int
		status  string
	}{{pipeline.DefaultMaxCrashes, "dead"}, {pipeline.DefaultMaxCrashes - 1, "succeeded"}} {
		t.Run(fmt.Sprint(tc.crashes), func(t *testing.T) {
			ev := webhookEvent(t, "/p", map[string]any{})
			require.NoError(t, o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
				return o.st.InsertEvent(ctx, tx, ev)
			}))
			runID := pipeline.RunID(ev.ID, "retried")
			state, err := json.Marshal(runner.State{Next: 1, Started: time.Now(), Outputs: map[string]map[string]any{"first": {}},
				Steps: []*runner.StepResult{{ID: "first", Action: "http.request", Status: runner.StatusSucceeded}}})
			require.NoError(t, err)
			require.NoError(t, o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
				return o.st.SaveCheckpoint(ctx, tx, runID, state, time.Now())
			}))
			raw, err := json.Marshal(pipeline.RunMsg{RunID: runID, Recipe: "retried",
				Event: broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt}})
			require.NoError(t, err)
			m := message.NewMessage(runID, raw)
			m.Metadata.Set(broker.CrashesKey, fmt.Sprint(tc.crashes))
			before := calls.Load()
			require.NoError(t, o.b.Publisher().Publish(broker.TopicRuns, m))
			run := waitRun(t, o.st, runID)
			require.Equal(t, tc.status, run.Status, "%s: %s", run.Reason, run.Error)
			if tc.status == "dead" {
				require.Equal(t, "poison", run.Reason)
				require.Contains(t, run.Error, fmt.Sprintf("stopped %d times", tc.crashes))
				require.Equal(t, before, calls.Load(), "a poison run is not run")
			} else {
				require.Equal(t, before+1, calls.Load(), "the run resumed at its second step")
			}
			cp, err := o.st.Checkpoint(ctx, runID)
			require.NoError(t, err)
			require.Nil(t, cp)
		})
	}
}

// TestPoisonCopyWaitsForTheRunningCopy: a copy of a run message that its
// queue reports as poison, come while the same run executes in this
// process, does not record the run dead under it: it waits, as any copy
// does, and finds the run finished.
func TestPoisonCopyWaitsForTheRunningCopy(t *testing.T) {
	ctx := context.Background()
	o := sqliteCase().backing(t)(t)
	defer o.close()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			select {
			case started <- struct{}{}:
			default:
			}
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer sink.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ix := twoStepIndex(t, "/p", sink.URL+"/first", sink.URL+"/second")
	er := runEngineWith(t, o, ix, 30*time.Second, nil)
	defer er.stop(t)
	ev := webhookEvent(t, "/p", map[string]any{})
	require.NoError(t, o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return o.st.InsertEvent(ctx, tx, ev)
	}))
	runID := pipeline.RunID(ev.ID, "retried")
	raw, err := json.Marshal(pipeline.RunMsg{RunID: runID, Recipe: "retried",
		Event: broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt}})
	require.NoError(t, err)
	require.NoError(t, o.b.Publisher().Publish(broker.TopicRuns, message.NewMessage("copy-1", raw)))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not start")
	}
	poison := message.NewMessage("copy-2", raw)
	poison.Metadata.Set(broker.CrashesKey, fmt.Sprint(pipeline.DefaultMaxCrashes))
	require.NoError(t, o.b.Publisher().Publish(broker.TopicRuns, poison))
	time.Sleep(500 * time.Millisecond)
	done, _, err := o.st.RunState(ctx, runID)
	require.NoError(t, err)
	require.False(t, done, "the run was recorded while it ran")
	close(release)
	run := waitRun(t, o.st, runID)
	require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
	time.Sleep(1500 * time.Millisecond) // the copy comes back, and finds it done
	run = waitRun(t, o.st, runID)
	require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
}

package pipeline_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
)

// TestEarlyCopyOfAPausedRunWaits checks that a copy of a run that waits
// for a durable retry (its event delivered again, say) does not run
// before the retry time stored with the run's checkpoint.
func TestEarlyCopyOfAPausedRunWaits(t *testing.T) {
	o := sqliteCase().backing(t)(t)
	defer o.close()
	sink := newBrokerSink(t, 0)
	er := runEngine(t, o, brokerIndex(t, sink.srv.URL), "one")
	defer er.stop(t)

	ev := webhookEvent(t, "/load", map[string]any{"n": 1})
	fresh, err := o.b.Accept(context.Background(), ev) // stored, so that the run can read it
	require.NoError(t, err)
	require.True(t, fresh)
	first := waitRun(t, o.st, pipeline.RunID(ev.ID, "broker-load"))
	require.Equal(t, "succeeded", first.Status)

	// the same run again, paused until a retry time: a checkpoint says so
	runID := "run_paused"
	due := time.Now().Add(1200 * time.Millisecond)
	state, err := json.Marshal(runner.State{Next: 0, RetryAt: due, Started: time.Now(), Outputs: map[string]map[string]any{}})
	require.NoError(t, err)
	require.NoError(t, o.b.Write(context.Background(), func(ctx context.Context, tx store.Execer) error {
		return o.st.SaveCheckpoint(ctx, tx, runID, state, time.Now())
	}))
	raw, err := json.Marshal(pipeline.RunMsg{RunID: runID, Recipe: "broker-load",
		Event: broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt}})
	require.NoError(t, err)
	require.NoError(t, o.b.Publisher().Publish(broker.TopicRuns, message.NewMessage("early", raw)))
	run := waitRun(t, o.st, runID)
	require.Equal(t, "succeeded", run.Status)
	require.False(t, run.StartedAt.IsZero())
	require.False(t, time.Now().Before(due), "the run finished before its retry time")
	var res runner.Result
	require.NoError(t, json.Unmarshal(run.Record, &res))
	require.NotEmpty(t, res.Steps)
	require.NotEmpty(t, res.Steps[0].Attempts)
	require.False(t, res.Steps[0].Attempts[0].Started.Before(due.Add(-10*time.Millisecond)), "the step ran before its retry time")
}

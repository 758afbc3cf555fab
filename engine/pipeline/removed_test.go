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
)

// TestRemovedRecipeIsRecorded checks that an event accepted for a recipe
// that is no longer loaded on its path when the event is matched gets a
// dead run (reason recipe_removed), as a run of a recipe removed after
// matching does, while the recipes still there run; and that a redelivery
// does not turn a finished run into a dead one.
func TestRemovedRecipeIsRecorded(t *testing.T) {
	for _, bc := range []brokerCase{sqliteCase(), memoryCase()} {
		t.Run(bc.name, func(t *testing.T) {
			o := bc.backing(t)(t)
			defer o.close()
			sink := newBrokerSink(t, 0)
			ix := brokerIndex(t, sink.srv.URL) // recipe broker-load on /load
			er := runEngine(t, o, ix, "one")
			defer er.stop(t)

			ev := webhookEvent(t, "/load", map[string]any{"n": 1})
			ev.Recipes = []string{"broker-load", "gone"}
			fresh, err := o.b.Accept(context.Background(), ev)
			require.NoError(t, err)
			require.True(t, fresh)
			dead := waitRun(t, o.st, pipeline.RunID(ev.ID, "gone"))
			require.Equal(t, "dead", dead.Status)
			require.Equal(t, "recipe_removed", dead.Reason)
			require.Contains(t, dead.Error, "no longer listens on /load")
			require.Equal(t, "succeeded", waitRun(t, o.st, pipeline.RunID(ev.ID, "broker-load")).Status)

			// nothing loaded on the path at all: every named recipe is dead
			ev2 := webhookEvent(t, "/nowhere", map[string]any{"n": 2})
			ev2.Recipes = []string{"moved"}
			_, err = o.b.Accept(context.Background(), ev2)
			require.NoError(t, err)
			require.Equal(t, "dead", waitRun(t, o.st, pipeline.RunID(ev2.ID, "moved")).Status)

			// the first event comes again (a redelivery) after its recipe
			// went: its finished run stays as it was
			empty, errs := pipeline.BuildIndex(nil, nil)
			require.Empty(t, errs)
			er.eng.SetIndex(empty)
			again, err := json.Marshal(broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt,
				Recipes: []string{"broker-load"}, Payload: ev.Payload})
			require.NoError(t, err)
			marker := webhookEvent(t, "/load", map[string]any{"n": 3})
			markerMsg, err := json.Marshal(broker.EventMsg{ID: marker.ID, Type: marker.Type, Source: marker.Source,
				ReceivedAt: marker.ReceivedAt, Recipes: []string{"marker"}, Payload: marker.Payload})
			require.NoError(t, err)
			require.NoError(t, o.b.Publisher().Publish(broker.TopicEvents, message.NewMessage("again", again)))
			require.NoError(t, o.b.Publisher().Publish(broker.TopicEvents, message.NewMessage("marker", markerMsg)))
			waitRun(t, o.st, pipeline.RunID(marker.ID, "marker"))
			require.Never(t, func() bool {
				r, err := o.st.GetRun(context.Background(), pipeline.RunID(ev.ID, "broker-load"))
				return err != nil || r.Status != "succeeded"
			}, 300*time.Millisecond, 20*time.Millisecond)
		})
	}
}

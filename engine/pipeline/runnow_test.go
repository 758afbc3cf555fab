package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// TestRunNow: on every broker, a recipe run by hand runs on the event
// given, and only that recipe does, though another listens on the same
// path; its filter still applies; an unknown recipe is refused with
// nothing stored.
func TestRunNow(t *testing.T) {
	for _, bc := range suiteBrokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var mu sync.Mutex
			var seen []string
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct{ Who string }
				_ = json.NewDecoder(r.Body).Decode(&body)
				mu.Lock()
				seen = append(seen, body.Who)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"ok":true}`)
			}))
			defer sink.Close()
			var recs []*recipes.Recipe
			for _, name := range []string{"chosen", "other"} {
				recs = append(recs, parseRecipe(t, fmt.Sprintf(`version: 1
name: %s
trigger: {type: webhook.received, with: {path: /shared}}
filter: event.body.n > 1
steps:
  - id: call
    action: http.request
    with: {url: "%s", json: {who: "%s {{ event.body.n }}"}}
`, name, sink.URL, name)))
			}
			ix, errs := pipeline.BuildIndex(recs, nil)
			require.Empty(t, errs)
			o := bc.backing(t)(t)
			defer o.close()
			er := runEngine(t, o, ix, "one")
			defer er.stop(t)

			eventID, runID, queued, err := er.eng.RunNow(ctx, "chosen", json.RawMessage(`{"body": {"n": 5}, "path": "/shared"}`))
			require.NoError(t, err)
			require.True(t, queued)
			require.Equal(t, pipeline.RunID(eventID, "chosen"), runID)
			run := waitRun(t, o.st, runID)
			require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
			ev, err := o.st.GetEvent(ctx, eventID)
			require.NoError(t, err, "the event is stored, for replays")
			require.Equal(t, pipeline.ManualSource, ev.Source)
			require.JSONEq(t, `{"body": {"n": 5}, "path": "/shared"}`, string(ev.Payload))

			// the filter applies: a run recorded filtered, nothing called
			eventID, runID, queued, err = er.eng.RunNow(ctx, "chosen", json.RawMessage(`{"body": {"n": 0}}`))
			require.NoError(t, err)
			require.False(t, queued)
			run, err = o.st.GetRun(ctx, runID)
			require.NoError(t, err)
			require.Equal(t, "filtered", run.Status)
			require.Equal(t, eventID, run.EventID)

			_, _, _, err = er.eng.RunNow(ctx, "nope", json.RawMessage(`{}`))
			require.ErrorIs(t, err, pipeline.ErrNoRecipe)
			_, _, _, err = er.eng.RunNow(ctx, "chosen", json.RawMessage(`[1]`))
			require.Error(t, err)

			// the other recipe on the path did not run
			time.Sleep(200 * time.Millisecond)
			runs, err := o.st.ListRuns(ctx, store.RunFilter{Recipe: "other", Limit: 10})
			require.NoError(t, err)
			require.Empty(t, runs)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []string{"chosen 5"}, seen)
		})
	}
}

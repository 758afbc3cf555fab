package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
)

// ErrNoRecipe is RunNow's error for a name no loaded, enabled recipe has.
var ErrNoRecipe = errors.New("no enabled recipe of that name")

// ManualSource is the source of an event given by hand (RunNow).
const ManualSource = "manual"

// RunNow runs one recipe on an event given by hand, as the REST API's
// POST /api/v1/recipes/{name}/run does: payload is the event as the
// recipe's trigger would deliver it (what `sous run --event` reads), a
// JSON object. Only that recipe runs, whatever else listens on its
// trigger. The event is stored (for replays), the recipe's filter is
// applied, and the run is queued durably on the broker before RunNow
// returns; queued is false when the filter let the event through to
// nothing (the run is then recorded filtered).
func (e *Engine) RunNow(ctx context.Context, name string, payload json.RawMessage) (eventID, runID string, queued bool, err error) {
	rec := e.index.Load().Recipe(name)
	if rec == nil {
		return "", "", false, fmt.Errorf("%w: %q", ErrNoRecipe, name)
	}
	decoded, err := decodePayload(payload)
	if err != nil || decoded == nil {
		return "", "", false, errors.New("the event must be a JSON object")
	}
	now := time.Now().UTC()
	ev := &store.Event{ID: NewEventID(), Type: rec.Trigger.Type, Source: ManualSource, ReceivedAt: now, Payload: payload}
	ev.DedupKey = ManualSource + ":" + ev.ID
	runID = RunID(ev.ID, name)
	// the event is stored (for replays) with the run's record when the
	// filter refuses it; a filter that fails to evaluate is recorded by
	// the runner as a failed run, as for any event
	var finished []*store.Run
	if ok, ferr := e.filterRunner().Filter(rec, runner.Event{ID: ev.ID, Type: ev.Type, ReceivedAt: now, Payload: decoded}, runID); ferr == nil && !ok {
		finished = append(finished, filteredRun(runID, name, ev.ID))
	}
	err = e.saveFinished(ctx, finished, func(ctx context.Context, tx store.Execer) error {
		return e.cfg.Store.InsertEvent(ctx, tx, ev)
	})
	if err != nil {
		return "", "", false, fmt.Errorf("store the event: %w", err)
	}
	if len(finished) > 0 {
		return ev.ID, runID, false, nil
	}
	msg, err := broker.NewMessage(RunMsg{RunID: runID, Recipe: name,
		Event: broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: now, Payload: payload}})
	if err != nil {
		return "", "", false, err
	}
	msg.Metadata.Set("recipe", name)
	msg.SetContext(ctx)
	if err := e.cfg.Broker.Publisher().Publish(broker.TopicRuns, msg); err != nil {
		return "", "", false, fmt.Errorf("queue the run: %w", err)
	}
	return ev.ID, runID, true, nil
}

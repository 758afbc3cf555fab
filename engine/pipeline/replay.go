package pipeline

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
)

// Replay queues a new run of a finished run's recipe for the same event.
// With fromFailedStep, the steps before the one that failed are not run
// again: their recorded outputs are reused.
func (e *Engine) Replay(ctx context.Context, runID string, fromFailedStep bool) (string, error) {
	return Replay(ctx, e.cfg.Store, e.cfg.Broker.Publisher(), runID, fromFailedStep)
}

// Replay queues a replay through any publisher (the CLI uses the store's
// own queue while the server runs).
func Replay(ctx context.Context, st *store.Store, pub interface {
	Publish(string, ...*message.Message) error
}, runID string, fromFailedStep bool) (string, error) {
	run, err := st.GetRun(ctx, runID)
	if err != nil {
		return "", fmt.Errorf("run %s: %w", runID, err)
	}
	if run.Status == "running" {
		return "", fmt.Errorf("run %s is still running", runID)
	}
	ev, err := st.GetEvent(ctx, run.EventID)
	if err != nil {
		return "", fmt.Errorf("event %s of run %s: %w (it may have been pruned)", run.EventID, runID, err)
	}
	rm := RunMsg{
		RunID:  "run_" + uuid.Must(uuid.NewV7()).String(),
		Recipe: run.Recipe,
		Event:  broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Payload: ev.Payload},
		Replay: true,
	}
	if fromFailedStep {
		if run.ErrorStep == "" {
			return "", fmt.Errorf("run %s did not fail at a step (status %s)", runID, run.Status)
		}
		var res runner.Result
		if err := json.Unmarshal(run.Record, &res); err != nil {
			return "", fmt.Errorf("run %s: read record: %w", runID, err)
		}
		rm.FromStep = run.ErrorStep
		rm.Prior = map[string]map[string]any{}
		for _, sr := range res.Steps {
			if sr.ID == run.ErrorStep {
				break
			}
			rm.Prior[sr.ID] = sr.Output
		}
	}
	msg, err := broker.NewMessage(rm)
	if err != nil {
		return "", err
	}
	msg.SetContext(ctx)
	if err := pub.Publish(broker.TopicRuns, msg); err != nil {
		return "", fmt.Errorf("queue replay: %w", err)
	}
	return rm.RunID, nil
}

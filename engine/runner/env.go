package runner

import (
	"time"

	"github.com/sous-run/sous/recipes"
)

// Env builds the expression environment of a run before its first step:
// event (conformed to the trigger's shape), trigger, run, secrets, and
// empty vars and steps.
func (r *Runner) Env(rec *recipes.Recipe, ev Event, runID string) map[string]any {
	return map[string]any{
		"event": conform(rec.Trigger.Spec.Shape, ev.Payload),
		"trigger": map[string]any{
			"type": ev.Type, "id": ev.ID, "received_at": ev.ReceivedAt.UTC().Format(time.RFC3339Nano),
		},
		"vars":    map[string]any{},
		"steps":   map[string]any{},
		"run":     map[string]any{"id": runID, "recipe": rec.Name, "attempt": 1},
		"secrets": secretsEnv(r.Secrets),
	}
}

// Filter evaluates a recipe's filter for an event; a recipe without one
// passes every event.
func (r *Runner) Filter(rec *recipes.Recipe, ev Event, runID string) (bool, error) {
	if rec.Filter == nil {
		return true, nil
	}
	return rec.Filter.Bool(r.Env(rec, ev, runID))
}

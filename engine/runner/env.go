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
		"secrets": r.secretsMap(),
	}
}

// secretsMap is the secrets as the expression environment holds them,
// built once per runner.
func (r *Runner) secretsMap() map[string]any {
	r.secretsOnce.Do(func() { r.secrets = secretsEnv(r.Secrets) })
	return r.secrets
}

// Filter evaluates a recipe's filter for an event; a recipe without one
// passes every event. A filter only reads, so its environment shares
// empty vars and steps: the matcher runs this for every event, and each
// allocation here costs garbage collection work in proportion to the
// recipes loaded.
func (r *Runner) Filter(rec *recipes.Recipe, ev Event, runID string) (bool, error) {
	if rec.Filter == nil {
		return true, nil
	}
	return rec.Filter.Bool(map[string]any{
		"event": conform(rec.Trigger.Spec.Shape, ev.Payload),
		"trigger": map[string]any{
			"type": ev.Type, "id": ev.ID, "received_at": ev.ReceivedAt.UTC().Format(time.RFC3339Nano),
		},
		"vars":    emptyEnv,
		"steps":   emptyEnv,
		"run":     map[string]any{"id": runID, "recipe": rec.Name, "attempt": 1},
		"secrets": r.secretsMap(),
	})
}

// emptyEnv stands for vars and steps before any exists; never written.
var emptyEnv = map[string]any{}

package runner

import (
	"sync"
	"time"

	"github.com/sous-run/sous/recipes"
)

// Env builds the expression environment of a run before its first step:
// event (conformed to the recipe's event shape: the trigger's, with the
// body the recipe declares), trigger, run, secrets, and empty vars and
// steps.
func (r *Runner) Env(rec *recipes.Recipe, ev Event, runID string) map[string]any {
	return map[string]any{
		"event": conform(rec.Trigger.EventShape(), ev.Payload),
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
// passes every event. The matcher runs this for every event, and with
// many recipes loaded each allocation here costs garbage collection work
// in proportion to them: so the environment is pooled, and holds only
// what the filter reads (a filter only reads, so vars and steps are shared
// empty maps).
func (r *Runner) Filter(rec *recipes.Recipe, ev Event, runID string) (bool, error) {
	f := rec.Filter
	if f == nil {
		return true, nil
	}
	fe := filterEnvs.Get().(*filterEnv)
	env := fe.env
	if f.Reads("event") {
		env["event"] = conform(rec.Trigger.EventShape(), ev.Payload)
	}
	if f.Reads("trigger") {
		t := fe.trigger
		t["type"], t["id"] = ev.Type, ev.ID
		if f.Reads("trigger.received_at") {
			t["received_at"] = ev.ReceivedAt.UTC().Format(time.RFC3339Nano)
		}
		env["trigger"] = t
	}
	if f.Reads("vars") {
		env["vars"] = emptyEnv
	}
	if f.Reads("steps") {
		env["steps"] = emptyEnv
	}
	if f.Reads("run") {
		fe.run["id"], fe.run["recipe"], fe.run["attempt"] = runID, rec.Name, 1
		env["run"] = fe.run
	}
	if f.Reads("secrets") {
		env["secrets"] = r.secretsMap()
	}
	ok, err := f.Bool(env)
	// nothing of the event stays reachable from the pool
	if len(fe.trigger) > 0 {
		clear(fe.trigger)
	}
	if len(fe.run) > 0 {
		clear(fe.run)
	}
	clear(env)
	filterEnvs.Put(fe)
	return ok, err
}

// filterEnv is the environment of one filter evaluation, reused: a filter
// gives a boolean, so nothing of it outlives the evaluation.
type filterEnv struct {
	env, trigger, run map[string]any
}

var filterEnvs = sync.Pool{New: func() any {
	return &filterEnv{
		env:     make(map[string]any, 6),
		trigger: make(map[string]any, 3),
		run:     make(map[string]any, 3),
	}
}}

// emptyEnv stands for vars and steps before any exists; never written.
var emptyEnv = map[string]any{}

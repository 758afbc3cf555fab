package runner_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
)

// webhookRecipe loads a webhook recipe with a filter, against the real
// connectors.
func webhookRecipe(tb testing.TB, filter string) *recipes.Recipe {
	tb.Helper()
	rec, diags := (&recipes.Loader{}).Parse("f.yaml", fmt.Appendf(nil, `version: 1
name: f
trigger: {type: webhook.received, with: {path: /f}}
filter: %q
steps:
  - id: call
    action: http.request
    with: {url: "http://127.0.0.1:1/x", json: {n: "{{ event.body.n }}"}}
`, filter))
	require.False(tb, diags.HasErrors(), "%v", diags)
	return rec
}

// webhookEvent is an event as intake stores it: every key of the shape is
// there.
func webhookEvent() runner.Event {
	return runner.Event{ID: "ev-1", Type: "webhook.received", ReceivedAt: time.Date(2026, 11, 22, 7, 30, 0, 5, time.UTC),
		Payload: map[string]any{
			"body":    map[string]any{"order": map[string]any{"id": 7, "total": 250}},
			"headers": map[string]any{"Content-Type": "application/json"},
			"query":   map[string]any{},
			"method":  "POST",
			"path":    "/f",
		}}
}

// The matcher evaluates filters for every event: a filter that reads only
// the event allocates nothing, so that the garbage collection work of a
// large set of loaded recipes is not paid per event; one that reads more
// pays only for what it reads.
func TestFilterAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := &runner.Runner{Secrets: map[string]string{"TOKEN": "t"}}
	ev := webhookEvent()
	for _, c := range []struct {
		filter string
		max    float64
	}{
		{`event.body.order.total >= 100`, 0},
		{`event.method == "POST" && event.headers["Content-Type"] != ""`, 0},
		{`secrets.TOKEN != ""`, 0},
		{`trigger.type == "webhook.received"`, 2},
		{`run.recipe == "f"`, 2},
		{`trigger.received_at != ""`, 4},
	} {
		rec := webhookRecipe(t, c.filter)
		allocs := testing.AllocsPerRun(200, func() {
			ok, err := r.Filter(rec, ev, "run-1")
			if err != nil || !ok {
				t.Fatalf("%s: %v %v", c.filter, ok, err)
			}
		})
		require.LessOrEqual(t, allocs, c.max, "allocations per event of %s", c.filter)
	}
}

// Filter builds only the parts of the environment a filter reads: every
// filter sees what it would in a run's full environment.
func TestFilterSeesTheRunEnvironment(t *testing.T) {
	r := &runner.Runner{Secrets: map[string]string{"TOKEN": "t0k"}}
	ev := webhookEvent()
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{`event.body.order.total >= 100`, true},
		{`event.body.order.total >= 1000`, false},
		{`trigger.type == "webhook.received" && trigger.id == "ev-1"`, true},
		{`trigger.received_at == "2026-11-22T07:30:00.000000005Z"`, true},
		{`trigger?.received_at startsWith "2026-11-22"`, true},
		{`trigger["received_at"] != "" && trigger.type != ""`, true},
		{`len(trigger) == 3 && "received_at" in trigger`, true},
		{`toJSON(trigger) contains "received_at"`, true},
		{`run.id == "run-1" && run.recipe == "f" && run.attempt == 1`, true},
		{`secrets.TOKEN == "t0k"`, true},
		{`len(vars) == 0 && len(steps) == 0`, true},
		{`len($env) == 6 && $env.trigger.received_at != ""`, true},
		{`let t = trigger; t.received_at != ""`, true},
		{`all([1, 2], {trigger.received_at != ""})`, true},
		{`len(map(filter([1, 2, 3], # > 1), trigger.received_at)) == 2`, true},
		{`event.path == "/f" && event.query == {}`, true},
	} {
		rec := webhookRecipe(t, c.filter)
		// the run's environment, as before a run's first step
		full, err := rec.Filter.Bool(r.Env(rec, ev, "run-1"))
		require.NoError(t, err, c.filter)
		require.Equal(t, c.want, full, "%s in the run's environment", c.filter)
		for range 3 { // and again, from the pool
			got, err := r.Filter(rec, ev, "run-1")
			require.NoError(t, err, c.filter)
			require.Equal(t, c.want, got, c.filter)
		}
	}
}

// BenchmarkFilter is the filter of one event, as the matcher runs it.
func BenchmarkFilter(b *testing.B) {
	r := &runner.Runner{}
	ev := webhookEvent()
	rec := webhookRecipe(b, `event.body.order.total >= 100`)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := r.Filter(rec, ev, "run-1"); err != nil || !ok {
			b.Fatalf("filter: %v %v", ok, err)
		}
	}
}

package pipeline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/internal/benchrecipes"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

// loadRecipes builds n webhook recipes on distinct paths plus the one the
// benchmark sends to.
func loadRecipes(tb testing.TB, n int) []*recipes.Recipe {
	tb.Helper()
	l := &recipes.Loader{}
	var out []*recipes.Recipe
	for i := 0; i < n; i++ {
		rec, diags := l.Parse(fmt.Sprintf("r%d.yaml", i), []byte(benchrecipes.Other(i, "http://127.0.0.1:1/x")))
		require.False(tb, diags.HasErrors(), "%v", diags)
		out = append(out, rec)
	}
	rec, diags := l.Parse("bench.yaml", []byte(`version: 1
name: bench
trigger: {type: webhook.received, with: {path: /bench, id: event.body.order.id}}
filter: event.body.order.total >= 100
steps:
  - id: deliver
    action: http.request
    with: {url: "http://127.0.0.1:1/sink", json: {id: "{{ event.body.order.id }}"}}
`))
	require.False(tb, diags.HasErrors(), "%v", diags)
	return append(out, rec)
}

func TestIndexMatchesByTypeAndKey(t *testing.T) {
	cron, diags := (&recipes.Loader{}).Parse("cron.yaml", []byte(`version: 1
name: nightly
trigger: {type: schedule.cron, with: {cron: "0 3 * * *"}}
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:1/"}}]
`))
	require.False(t, diags.HasErrors(), "%v", diags)
	ix, errs := pipeline.BuildIndex(append(loadRecipes(t, 50), cron), nil)
	require.Empty(t, errs)
	require.Len(t, ix.Recipes(), 52)
	got := ix.Match("webhook.received", "/bench")
	require.Len(t, got, 1)
	require.Equal(t, "bench", got[0].Name)
	require.Empty(t, ix.Match("webhook.received", "/nothing"))
	require.Empty(t, ix.Match("schedule.cron", "/bench"))
	require.NotNil(t, ix.Hook("/other/7"))
	require.Nil(t, ix.Hook("/other/999"))
	require.Len(t, ix.ByType("webhook.received"), 51)
	require.Equal(t, []*recipes.Recipe{cron}, ix.ByType("schedule.cron"))
	require.Equal(t, []*recipes.Recipe{cron}, ix.Match("schedule.cron", "nightly"))
	require.Same(t, cron, ix.Recipe("nightly"))
	require.Equal(t, "other-7", ix.Recipe("other-7").Name)
}

func TestIndexRefusesConflictingHooks(t *testing.T) {
	l := &recipes.Loader{}
	parse := func(name, secret string) *recipes.Recipe {
		rec, diags := l.Parse(name+".yaml", fmt.Appendf(nil, `version: 1
name: %s
trigger: {type: webhook.received, with: {path: /shared, secret: "{{ secrets.%s }}"}}
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:1/"}}]
`, name, secret))
		require.False(t, diags.HasErrors(), "%v", diags)
		return rec
	}
	ix, errs := pipeline.BuildIndex([]*recipes.Recipe{parse("a", "ONE"), parse("b", "TWO")}, map[string]string{"ONE": "1111", "TWO": "2222"})
	require.Len(t, errs, 1)
	require.Contains(t, errs[0].Error(), "secrets differ")
	require.Len(t, ix.Match("webhook.received", "/shared"), 1, "the later recipe is left out")

	ix, errs = pipeline.BuildIndex([]*recipes.Recipe{parse("c", "ONE"), parse("a", "ONE")}, map[string]string{"ONE": "1111"})
	require.Empty(t, errs)
	got := ix.Match("webhook.received", "/shared")
	require.Len(t, got, 2, "recipes that agree share the path")
	require.Equal(t, []string{"a", "c"}, []string{got[0].Name, got[1].Name})
	require.Equal(t, []string{"a", "c"}, ix.Hook("/shared").Recipes)

	_, errs = pipeline.BuildIndex([]*recipes.Recipe{parse("a", "ONE")}, nil)
	require.Len(t, errs, 1, "an empty signing secret is refused rather than accepting unsigned requests")
	require.Contains(t, errs[0].Error(), "secret is empty")
}

// BenchmarkMatch measures the per-event cost of matching and filtering
// with 10 and with 10,000 other recipes loaded: the index keeps it flat,
// and so does allocating nothing (each allocation would cost garbage
// collection work in proportion to the recipes loaded).
func BenchmarkMatch(b *testing.B) {
	// what intake stores for a webhook: every key of the event shape is there
	payload := map[string]any{
		"body":    map[string]any{"order": map[string]any{"id": 7, "total": 250}},
		"headers": map[string]any{"Content-Type": "application/json"},
		"query":   map[string]any{},
		"method":  "POST",
		"path":    "/bench",
	}
	for _, n := range []int{10, 10000} {
		ix, errs := pipeline.BuildIndex(loadRecipes(b, n), nil)
		require.Empty(b, errs)
		r := &runner.Runner{}
		ev := runner.Event{ID: "ev", Type: "webhook.received", ReceivedAt: time.Now(), Payload: payload}
		b.Run(fmt.Sprintf("recipes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, rec := range ix.Match("webhook.received", "/bench") {
					ok, err := r.Filter(rec, ev, "run")
					if err != nil || !ok {
						b.Fatalf("filter: %v %v", ok, err)
					}
				}
			}
		})
	}
}

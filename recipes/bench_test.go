package recipes_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sous-run/sous/recipes"
)

// benchRecipes is how many recipes one iteration validates.
const benchRecipes = 1000

// benchRecipe writes the i-th recipe of the benchmark corpus: varied and
// realistic (webhook or cron trigger, a filter, vars, 3 to 5 http.request
// steps with templates, retries, conditions and sometimes on_error), and
// distinct from every other (name, path, URLs, expressions).
func benchRecipe(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# generated recipe %d\nversion: 1\nname: bench-%04d\n", i, i)
	fmt.Fprintf(&b, "description: Benchmark recipe number %d of the validation benchmark\n", i)
	webhook := i%3 != 0
	if webhook {
		fmt.Fprintf(&b, `trigger:
  type: webhook.received
  with:
    path: /bench/%d/orders
    secret: "{{ secrets.BENCH_%d }}"
    id: event.body.order_id + "-%d"
`, i, i%17, i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "filter: event.method == \"POST\" && event.body.total >= %d\n", i%500)
		case 1:
			fmt.Fprintf(&b, "filter: >-\n  event.headers[\"X-Shop\"] == \"shop-%d\" &&\n  len(event.body.items) > %d\n", i, i%5)
		case 2:
			fmt.Fprintf(&b, "filter: \"'vip' in event.body.tags || event.query.force == '%d'\"\n", i)
		}
		fmt.Fprintf(&b, `vars:
  order: "{{ event.body.order_id }}"
  customer: "{{ upper(event.body.customer.name ?? 'unknown') }}"
  total: "{{ event.body.total * %d.0 / 100 }}"
`, 100+i%7)
	} else {
		fmt.Fprintf(&b, `trigger:
  type: schedule.cron
  with:
    cron: "%d %d * * %d-5"
    timezone: %s
filter: event.scheduled_at != "" && %d > 0
vars:
  day: "{{ split(event.scheduled_at, 'T')[0] }}"
  window: "{{ {'from': vars.day, 'to': event.fired_at, 'n': %d} }}"
`, i%60, i%24, i%2, []string{"UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"}[i%4], i, i)
	}
	steps := 3 + i%3
	for s := 0; s < steps; s++ {
		if s == 0 {
			b.WriteString("steps:\n")
		}
		fmt.Fprintf(&b, "  - id: step_%d\n    name: Step %d of recipe %d\n    action: http.request\n", s, s, i)
		if s > 0 {
			fmt.Fprintf(&b, "    if: steps.step_%d.output.status < %d\n", s-1, 300+s)
		}
		b.WriteString("    with:\n")
		fmt.Fprintf(&b, "      url: \"https://api%d.example.test/v1/%d/{{ run.id }}\"\n", i%9, s)
		switch s % 3 {
		case 0:
			b.WriteString("      method: POST\n      json:\n")
			if webhook {
				fmt.Fprintf(&b, "        order: \"{{ vars.order }}\"\n        text: \"{{ vars.customer }} paid {{ vars.total }} (step %d)\"\n", s)
			} else {
				b.WriteString("        window: \"{{ vars.window }}\"\n        day: \"{{ vars.day }}\"\n")
			}
			if s > 0 {
				fmt.Fprintf(&b, "        previous: \"{{ steps.step_%d.output.json }}\"\n", s-1)
			}
		case 1:
			fmt.Fprintf(&b, "      method: PUT\n      headers:\n        X-Run: \"{{ run.id }}\"\n        X-Attempt: \"{{ run.attempt }}\"\n      body: |\n        recipe {{ run.recipe }} step %d\n        status {{ steps.step_%d.output.status }}\n", s, s-1)
		case 2:
			fmt.Fprintf(&b, "      method: GET\n      query: {page: \"%d\", trigger: \"{{ trigger.type }}\"}\n      timeout: %ds\n", s, 5+i%20)
		}
		if (i+s)%2 == 0 {
			fmt.Fprintf(&b, "    retry: {max_attempts: %d, backoff: exponential, initial_interval: 1s, max_interval: %dm}\n", 2+i%5, 1+s)
		}
		if s == steps-1 {
			b.WriteString("    timeout: 45s\n    continue_on_error: true\n")
		}
	}
	if i%2 == 0 {
		fmt.Fprintf(&b, `on_error:
  - id: alert
    action: http.request
    with:
      url: https://alerts.example.test/%d
      json: {text: "{{ run.recipe }} failed at {{ error.step }}: {{ error.message }}"}
`, i)
	}
	return b.String()
}

// benchCorpus builds the recipes and checks once that each is valid: the
// benchmark measures the path of valid recipes.
func benchCorpus(tb testing.TB) ([][]byte, []*recipes.Recipe) {
	tb.Helper()
	srcs := make([][]byte, benchRecipes)
	parsed := make([]*recipes.Recipe, benchRecipes)
	for i := range srcs {
		srcs[i] = []byte(benchRecipe(i))
		r, diags := (&recipes.Loader{}).Parse(fmt.Sprintf("bench-%04d.yaml", i), srcs[i])
		if len(diags) > 0 || r == nil {
			tb.Fatalf("recipe %d:\n%s\n%s", i, diags.Error(), srcs[i])
		}
		parsed[i] = r
	}
	return srcs, parsed
}

// TestBenchCorpus keeps the benchmark's recipes valid and varied when the
// benchmark itself is not run.
func TestBenchCorpus(t *testing.T) {
	srcs, parsed := benchCorpus(t)
	seen := map[string]bool{}
	triggers := map[string]int{}
	for i, src := range srcs {
		s := string(src)
		if seen[s] {
			t.Fatalf("recipe %d is a duplicate", i)
		}
		seen[s] = true
		r := parsed[i]
		triggers[r.Trigger.Type]++
		if n := len(r.Steps); n < 3 || n > 5 {
			t.Fatalf("recipe %d has %d steps", i, n)
		}
	}
	if triggers["webhook.received"] == 0 || triggers["schedule.cron"] == 0 {
		t.Fatalf("triggers: %v", triggers)
	}
}

// BenchmarkValidate1000 validates 1,000 in-memory recipes per iteration
// with Loader.Parse: YAML, schema checks, connector specs, expression and
// template compiling and type-checking.
func BenchmarkValidate1000(b *testing.B) {
	srcs, _ := benchCorpus(b)
	names := make([]string, len(srcs))
	var size int64
	for i, s := range srcs {
		names[i] = fmt.Sprintf("bench-%04d.yaml", i)
		size += int64(len(s))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l := &recipes.Loader{}
		for i, src := range srcs {
			if r, diags := l.Parse(names[i], src); r == nil || len(diags) > 0 {
				b.Fatalf("recipe %d: %s", i, diags.Error())
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRecipes, "ns/recipe")
}

// BenchmarkLoadPaths1000 is the same corpus read from files by LoadPaths:
// walking, reading and the checks of the set (unique names).
func BenchmarkLoadPaths1000(b *testing.B) {
	srcs, _ := benchCorpus(b)
	dir := b.TempDir()
	for i, src := range srcs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("bench-%04d.yaml", i)), src, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		set, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
		if len(diags) > 0 || len(set.Recipes) != benchRecipes {
			b.Fatalf("%d recipes: %s", len(set.Recipes), diags.Error())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRecipes, "ns/recipe")
}

package recipes_test

import (
	"testing"

	"github.com/sous-run/sous/recipes"
)

// BenchmarkEval is the evaluation of the kinds of template a recipe's vars
// hold, as a run evaluates them: a field, a + of strings, a loop over a
// list. It measures what bounding every evaluation (budget.go) costs.
func BenchmarkEval(b *testing.B) {
	r, diags := (&recipes.Loader{}).Parse("eval.yaml", []byte(`version: 1
name: eval
trigger: {type: webhook.received, with: {path: /eval}}
vars:
  field: "{{ event.body.order.id }}"
  concat: "{{ event.body.customer.first + ' ' + event.body.customer.last }}"
  loop: "{{ all(event.body.items, .price > 0) }}"
  names: "{{ join(map(event.body.items, .name), ', ') }}"
steps:
  - {id: call, action: http.request, with: {url: "http://127.0.0.1:1/"}}
`))
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	items := make([]any, 10)
	for i := range items {
		items[i] = map[string]any{"name": "item", "price": float64(i + 1)}
	}
	env := map[string]any{"event": map[string]any{"body": map[string]any{
		"order":    map[string]any{"id": "o-1"},
		"customer": map[string]any{"first": "Ada", "last": "Lovelace"},
		"items":    items,
	}}}
	for _, v := range r.Vars {
		b.Run(v.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Value.Render(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

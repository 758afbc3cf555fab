package pipeline_test

import "fmt"

// otherRecipe is recipe number i of the many loaded beside a benchmarked
// one, as cmd/sous-bench writes them: a webhook on its own path, a filter
// and one http.request step with a template.
func otherRecipe(i int, sink string) string {
	return fmt.Sprintf(`version: 1
name: other-%d
trigger: {type: webhook.received, with: {path: /other/%d}}
filter: event.body.n > %d
steps:
  - id: call
    action: http.request
    with: {url: %q, json: {n: "{{ event.body.n }}"}}
`, i, i, i, sink)
}

// orderRecipe is the benchmarked kind of recipe (cmd/sous-bench's): a
// webhook with an id expression, a filter, a var and a step with
// templates.
func orderRecipe(name, path string, minTotal int, sink string) string {
	return fmt.Sprintf(`version: 1
name: %s
trigger: {type: webhook.received, with: {path: %s, id: event.body.order.id}}
filter: event.body.order.total >= %d
vars:
  summary: "Order {{ event.body.order.id }} for {{ event.body.order.customer }}"
steps:
  - id: deliver
    action: http.request
    with:
      url: %q
      json: {text: "{{ vars.summary }}", total: "{{ event.body.order.total }}"}
`, name, path, minTotal, sink)
}

// Package benchrecipes writes the recipes the runtime is benchmarked with:
// cmd/sous-bench serves them, and the pipeline's Go benchmarks and memory
// tests load the same ones, so that their figures describe one workload.
package benchrecipes

import "fmt"

// Order is the benchmarked recipe: a webhook on path with an id expression,
// a filter passing orders of minTotal or more, a var and one http.request
// step with templates, delivering to sink.
func Order(name, path string, minTotal int, sink string) string {
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

// Other is recipe number i of the many loaded beside the benchmarked one:
// a webhook on a path of its own, a filter and one http.request step with
// a template.
func Other(i int, sink string) string {
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

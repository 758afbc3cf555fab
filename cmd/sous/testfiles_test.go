package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTestFileAlone: `sous test orders.test.yaml` finds its recipe beside
// it, `sous test orders.yaml` runs the tests beside it, and another
// recipe of the folder, broken, is neither loaded nor reported.
func TestTestFileAlone(t *testing.T) {
	dir := t.TempDir()
	recipe := writeFile(t, dir, "orders.yaml", `version: 1
name: orders
trigger: {type: webhook.received, with: {path: /orders}}
filter: event.body.total > 100
steps:
  - id: tell
    action: http.request
    with: {url: "https://example.com/x", json: {total: "{{ event.body.total }}"}}
`)
	test := writeFile(t, dir, "orders.test.yaml", `recipe: orders
cases:
  - name: a big order
    event: {body: {total: 250}}
    mocks: {tell: {output: {status: 200}}}
    expect: {status: succeeded}
  - name: a small one
    event: {body: {total: 5}}
    expect: {filter: false, status: filtered}
`)
	writeFile(t, dir, "broken.yaml", "version: 1\nname: broken\ntrigger: {type: nope.nothing}\n")

	r := sous(t, "", "test", test)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "2 cases")
	require.NotContains(t, r.stdout+r.stderr, "broken")

	r = sous(t, "", "test", recipe)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "2 cases", "the tests beside the recipe ran")

	r = sous(t, "", "validate", test)
	require.Equal(t, 0, r.code, "%s", r)

	r = sous(t, "", "test", dir)
	require.Equal(t, 1, r.code, "the folder, broken recipe included: %s", r)
}

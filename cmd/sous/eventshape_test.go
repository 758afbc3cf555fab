package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEventNumberForString: an event field the trigger declares a
// string, given as a number (Zoom sends a meeting id both ways), is its
// decimal text in `sous test` and `sous run`, as the receiver makes it
// under `sous serve`: the filter compares it as a string.
func TestEventNumberForString(t *testing.T) {
	dir := t.TempDir()
	recipe := writeFile(t, dir, "rec.yaml", `version: 1
name: zoom-id
trigger: {type: zoom.recording_completed, connection: zoom}
filter: event.payload.object.id == "85123456789" && event.payload.object.id startsWith "851"
steps:
  - id: tell
    action: http.request
    with: {url: "https://example.com/x", json: {id: "{{ event.payload.object.id }}"}}
`)
	writeFile(t, dir, "rec.test.yaml", `recipe: zoom-id
cases:
  - name: a numeric id
    event: {payload: {object: {id: 85123456789, topic: Standup}}}
    mocks: {tell: {output: {status: 200}}}
    expect:
      status: succeeded
      steps: {tell: {with: {json: {id: "85123456789"}}}}
  - name: a string id
    event: {payload: {object: {id: "85123456789"}}}
    mocks: {tell: {output: {status: 200}}}
    expect: {status: succeeded}
`)
	config := writeFile(t, dir, "sous.yaml", "connections:\n  zoom: {type: zoom, webhook_secret: \"${ZOOM_SECRET:-dev-zoom-secret}\"}\n")
	r := sous(t, "", "test", dir)
	require.Equal(t, 0, r.code, "%s", r)
	event := writeFile(t, dir, "ev.json", `{"payload": {"object": {"id": 85123456789}}}`)
	r = sous(t, "", "run", recipe, "--config", config, "--event", event, "--dry-run")
	require.Equal(t, 0, r.code, "%s", r)
	require.NotContains(t, r.stdout+r.stderr, "filtered")
}
